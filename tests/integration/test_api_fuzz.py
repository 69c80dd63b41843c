"""Property-based fuzzing of the whole JSON API from its own OpenAPI document (schemathesis).

Every operation of `/openapi.json` is called with generated inputs, valid ones and invalid
ones, each as one of several roles (resident, window clerk, officer, supervisor, hospital
cashier, medical-insurance officer, anonymous). No answer may be a 5xx, and every answer
must be one the document promises: a documented status code, the documented content type
(problem+json for errors) and a body of the documented shape. A client generated from the
spec thus handles what the server really sends.

Deterministic: Hypothesis is derandomized, keeps no example database and draws a fixed
number of examples per operation and mode. schemathesis's own pytest plugin is disabled
(pyproject addopts): its hooks wrap every test of the suite, so the operations are driven
here through its Python API instead.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from builders import (
    SIMPLE_MATTER,
    make_case,
    make_clerk,
    make_filing,
    make_hospital_staff,
    make_institution,
    make_insured,
    make_licence,
    make_medical_officer,
    make_officer,
    make_resident,
    make_supervisor,
    make_work_order,
)

#: Hypothesis draws the first more often than the others: anonymous calls come last.
ROLES = ("resident", "officer", "clerk", "hospital", "medical", "supervisor", "anonymous")
#: Examples per operation and generation mode (each sent as one of ROLES); a deeper run
#: by hand: TONGBAN_FUZZ_EXAMPLES=200 pytest tests/integration/test_api_fuzz.py
MAX_EXAMPLES = int(os.environ.get("TONGBAN_FUZZ_EXAMPLES", "8"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: Operations not fuzzed, with the reason (each one a known finding being fixed elsewhere).
EXCLUDED: dict[str, str] = {}


@pytest.fixture
def world(app: Any, session: Any) -> dict[str, Any]:
    """Accounts of every role (with fresh bearer tokens for each operation) and records
    the resident owns (a case, a licence, a work order) and the hospital serves (a visit):
    half of the calls of an operation with a path parameter name one of them, so that the
    fuzzer goes past "not found" into the rules."""
    from tongban.identity import service as identity
    from tongban.medical import service as medical

    hospital = make_institution(session, "310000")
    resident = make_resident(session, city="320500")
    accounts = {
        "resident": resident,
        "clerk": make_clerk(session),
        "officer": make_officer(session, "320500-housing_fund"),
        "supervisor": make_supervisor(session),
        "hospital": make_hospital_staff(session, hospital),
        "medical": make_medical_officer(session, "310000"),
    }
    case = make_case(session, resident)
    licence = make_licence(session, resident)
    work_order = make_work_order(session, resident)
    insured = make_insured(session)
    make_filing(session, insured)
    visit = medical.register_visit(
        session, accounts["hospital"], id_number=insured.id_number, visit_no="FUZZ-1"
    )
    session.commit()

    def fresh_tokens() -> dict[str, dict[str, str]]:
        """New tokens: an operation may end the sessions of its caller (revoke, password
        change), which must not turn the calls of the operations after it into 401s."""
        tokens = {r: identity.issue_token(session, a, name="fuzz")[0] for r, a in accounts.items()}
        session.commit()
        return {"anonymous": {}} | {r: {"Authorization": f"Bearer {t}"} for r, t in tokens.items()}

    known = {
        "case_id": str(case.id),
        "case_ref": case.number,
        "licence_id": str(licence.id),
        "ticket_id": str(work_order.id),
        "ref": work_order.number,
        "visit_id": str(visit.id),
        "code": SIMPLE_MATTER,
        "jurisdiction_code": "320000",
        "fmt": "json",
    }
    return {"fresh_tokens": fresh_tokens, "known": known}


def _fuzz(operation: Any, mode: Any, world: dict[str, Any], statuses: Counter[int]) -> int:
    """Run MAX_EXAMPLES generated calls of `operation`; returns how many were sent."""
    sent = 0
    tokens: dict[str, dict[str, str]] = world["fresh_tokens"]()
    strategy = operation.as_strategy(generation_mode=mode)
    names = {p.name for p in operation.path_parameters}
    known = {k: v for k, v in world["known"].items() if k in names}
    if known:
        strategy = st.one_of(
            strategy, operation.as_strategy(generation_mode=mode, path_parameters=known)
        )

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=strategy, role=st.sampled_from(ROLES))
    def run(case: Any, role: str) -> None:
        nonlocal sent
        sent += 1
        response = case.call_and_validate(headers=tokens[role], checks=CHECKS)
        statuses[response.status_code] += 1

    run()
    return sent


def test_every_operation_answers_as_documented(app: Any, world: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations = requests = 0
    started = time.monotonic()
    slowest: list[tuple[float, str]] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in EXCLUDED:
            continue
        operations += 1
        began = time.monotonic()
        for mode in schemathesis.GenerationMode:
            try:
                requests += _fuzz(operation, mode, world, statuses)
            except Unsatisfiable:
                continue  # nothing to make invalid (an operation without any input)
            except (Exception, BaseExceptionGroup) as exc:  # report every failing operation
                failures.append(f"{operation.label} ({mode.value}):\n{exc}")
        slowest.append((time.monotonic() - began, operation.label))
    elapsed = time.monotonic() - started
    print(f"fuzzed {operations} operations with {requests} requests in {elapsed:.1f}s")
    print("answers:", ", ".join(f"{code}×{n}" for code, n in sorted(statuses.items())))
    print("slowest:", ", ".join(f"{label} {t:.1f}s" for t, label in sorted(slowest)[-5:]))
    assert operations >= 60
    assert not failures, "\n\n".join(failures)
