"""The OpenAPI document promises the errors the server really sends: every 4xx of every
operation is an `application/problem+json` Problem (the shape of `web/problems.py`),
never FastAPI's default `HTTPValidationError`; the fuzz test
(tests/integration/test_api_fuzz.py) checks the promise against real answers."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from builders import make_resident, token_for

PROBLEM = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
    ]


def test_problem_is_one_component_with_the_fields_the_handlers_send(
    spec: dict[str, Any],
) -> None:
    schemas = spec["components"]["schemas"]
    problem = schemas["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert {"instance", "errors"} <= set(problem["properties"])
    assert set(schemas["ProblemFieldError"]["required"]) == {"field", "message"}
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas


def test_every_4xx_of_every_operation_is_problem_json(spec: dict[str, Any]) -> None:
    seen = 0
    for method, path, op in _operations(spec):
        for status, answer in op["responses"].items():
            if not status.startswith("4"):
                continue
            seen += 1
            if path.startswith("/open311/") and status in ("400", "403", "404"):
                # GeoReport v2 answers its errors in its own format, as its clients expect.
                assert set(answer["content"]) == {"application/json", "text/xml"}
                continue
            assert answer["content"] == {PROBLEM: {"schema": PROBLEM_REF}}, (method, path)
    assert seen > 200


def test_the_statuses_follow_what_an_operation_takes(spec: dict[str, Any]) -> None:
    for method, path, op in _operations(spec):
        statuses = set(op["responses"])
        if op.get("parameters") or "requestBody" in op:
            assert "422" in statuses, (method, path)
        if "{" in path:
            assert "404" in statuses, (method, path)
        if "requestBody" in op:
            assert "413" in statuses, (method, path)
    me = spec["paths"]["/api/v1/me"]["get"]["responses"]
    assert {"401", "403"} <= set(me)
    paths = spec["paths"]
    # Found by the fuzzer: what these operations really answered, undocumented before.
    token = paths["/api/v1/auth/token"]["post"]["responses"]
    assert {"401", "429"} <= set(token)
    assert "Retry-After" in token["429"]["headers"]
    assert "415" in paths["/api/v1/attachments"]["post"]["responses"]
    assert "404" in paths["/api/v1/cases"]["post"]["responses"]  # an unknown matter
    assert {"401", "403", "415"} <= set(paths["/exchange/v1/inbox"]["post"]["responses"])
    # Anonymous reads of reference data cannot be refused for lack of a login.
    assert "401" not in spec["paths"]["/api/v1/jurisdictions"]["get"]["responses"]


def test_a_validation_error_matches_the_documented_shape(
    client: TestClient, spec: dict[str, Any], session: Any
) -> None:
    headers = token_for(client, make_resident(session))
    r = client.post("/api/v1/cases", headers=headers, json={"matter_code": 7})
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    props = spec["components"]["schemas"]["Problem"]["properties"]
    assert set(body) <= set(props)
    assert body["status"] == 422
    assert all(set(e) == {"field", "message"} for e in body["errors"])
