"""Regressions of what the API fuzz test (tests/integration/test_api_fuzz.py) found: each
answer is a documented 4xx, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from builders import make_resident, token_for

PROBLEM = "application/problem+json"


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "/api/v1/cities?jurisdiction=32%000000", None),
        ("GET", "/api/v1/authorities?type=housing%00fund", None),
        ("GET", "/api/v1/cases?q=C%00", None),
        ("GET", "/api/v1/tickets?q=%00", None),
        ("GET", "/api/v1/matters/YRD%00", None),
        ("POST", "/api/v1/cases", {"matter_code": "YRD\u0000", "form_data": {}}),
    ],
)
def test_a_nul_character_in_any_input_is_a_422_not_a_500(
    client: TestClient, session: Any, method: str, url: str, body: Any
) -> None:
    """PostgreSQL refuses text holding U+0000 before the query is sent (psycopg DataError);
    SQLite stores it. Either way the caller gets a 4xx (PostgreSQL: 422 problem+json)."""
    headers = token_for(client, make_resident(session))
    r = client.request(method, url, headers=headers, json=body)
    assert r.status_code < 500, r.text
    if r.status_code == 422:
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["status"] == 422
