"""The message centre's operations fuzzed from the OpenAPI document like every other
(tests/integration/test_api_fuzz.py), on their own (TONGBAN_FUZZ_EXAMPLES=200 for a
deeper run): no 5xx, only documented answers, problem+json errors."""

from __future__ import annotations

from collections import Counter
from typing import Any

import schemathesis
from hypothesis.errors import Unsatisfiable

from integration.test_api_fuzz import _fuzz, world  # noqa: F401 - the fixture


def test_message_operations_answer_as_documented(app: Any, world: dict[str, Any]) -> None:  # noqa: F811
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if "/api/v1/messages" not in operation.path:
            continue
        operations += 1
        for mode in schemathesis.GenerationMode:
            try:
                _fuzz(operation, mode, world, statuses)
            except Unsatisfiable:
                continue
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} ({mode.value}):\n{exc}")
    assert operations == 6
    assert not failures, "\n\n".join(failures)
    assert statuses[200] > 0 and statuses[422] > 0
