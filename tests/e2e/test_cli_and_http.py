"""The real CLI and the real server over HTTP: health, OpenAPI, the demo accounts, an
application travelling from a resident to the competent officer through the worker, and
bad input answered with problem+json (never a 500)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

#: A 江苏 matter applied for online by a resident of 安徽: real-estate records (苏州).
MATTER = "YRD-BDC-0001"
JURISDICTION, CITY = "320000", "320500"
#: The forwarding message is delivered by the embedded worker; allow it this long.
FORWARD_TIMEOUT = 60.0
PROBLEM = "application/problem+json"
Form = dict[str, Any]


@pytest.fixture(scope="module")
def resident(login: Callable[[str], dict[str, str]]) -> dict[str, str]:
    return login("wangfang")


@pytest.fixture(scope="module")
def matter(http: httpx.Client, resident: dict[str, str]) -> dict[str, Any]:
    r = http.get(f"/api/v1/matters/{MATTER}", headers=resident)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def form(matter: dict[str, Any], form_for: Callable[[dict[str, Any]], dict[str, Any]]) -> Form:
    """A valid form_data for MATTER (a fresh dict each test)."""
    return form_for(matter["form_schema"])


def _upload(http: httpx.Client, headers: dict[str, str], material: str, pdf: bytes) -> str:
    r = http.post(
        "/api/v1/attachments",
        headers=headers,
        data={"material_code": material},
        files={"file": (f"{material}.pdf", pdf, "application/pdf")},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _body(form_data: dict[str, Any], **more: Any) -> dict[str, Any]:
    """An application for MATTER in 苏州, online, with consent."""
    return {
        "matter_code": MATTER,
        "competent_jurisdiction": JURISDICTION,
        "competent_city": CITY,
        "mode": "online",
        "form_data": form_data,
        "consent": True,
        **more,
    }


def _application(
    http: httpx.Client,
    headers: dict[str, str],
    matter: dict[str, Any],
    form: Form,
    pdf: bytes,
) -> dict[str, Any]:
    required = [m["code"] for m in matter["materials"] if m["required"]]
    ids = [_upload(http, headers, code, pdf) for code in required]
    return _body(form, attachment_ids=ids)


def _assert_problem(r: httpx.Response, status: int | tuple[int, ...], field: str) -> None:
    statuses = (status,) if isinstance(status, int) else status
    assert r.status_code in statuses, (r.status_code, r.text)
    assert r.headers["content-type"].startswith(PROBLEM), r.headers["content-type"]
    body = r.json()
    assert body["status"] == r.status_code and body["type"] and body["detail"], body
    fields = [e["field"] for e in body.get("errors", [])]
    # "attachment_ids.0" names attachment_ids; "form_data.purpose" names purpose.
    named = [f for f in fields if field == f or field in f.split(".")]
    assert named, (field, body)


def test_healthz(http: httpx.Client) -> None:
    r = http.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_openapi_describes_the_case_api(http: httpx.Client) -> None:
    r = http.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert "/api/v1/cases" in paths and "post" in paths["/api/v1/cases"]
    assert "/api/v1/matters" in paths


def test_demo_accounts_json(demo_accounts: list[dict[str, Any]]) -> None:
    keys = {"username", "password", "role", "jurisdiction_code", "city_code", "authority"}
    for entry in demo_accounts:
        assert keys <= entry.keys(), entry
    by_name = {a["username"]: a for a in demo_accounts}
    assert by_name["wangfang"]["role"] == "resident"
    assert by_name["wangfang"]["city_code"] == "340100"
    assert by_name["clerk-310000"]["role"] == "clerk"
    officer = by_name["320500-public_security-approver"]
    assert (officer["role"], officer["authority"]) == ("officer", "320500-public_security")


def test_online_application_reaches_the_competent_officer(
    http: httpx.Client,
    login: Callable[[str], dict[str, str]],
    resident: dict[str, str],
    matter: dict[str, Any],
    form: Form,
    pdf_bytes: bytes,
) -> None:
    body = _application(http, resident, matter, form, pdf_bytes)
    r = http.post("/api/v1/cases", json=body, headers=resident)
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["competent_jurisdiction"] == JURISDICTION
    assert case["matter_code"] == MATTER
    assert case["applicant_identifier_masked"] != ""

    mine = http.get(f"/api/v1/cases/{case['id']}", headers=resident)
    assert mine.status_code == 200
    authority_id = mine.json()["authority_id"]
    authorities = http.get("/api/v1/authorities", params={"jurisdiction": JURISDICTION}).json()
    authority = next(a for a in authorities if a["id"] == authority_id)
    assert authority["city_code"] == CITY
    officer = login(f"{authority['code']}-approver")

    # The worker forwards the case to the authority; until then the officer cannot see it.
    deadline = time.monotonic() + FORWARD_TIMEOUT
    seen: list[str] = []
    while time.monotonic() < deadline:
        listed = http.get("/api/v1/cases", headers=officer)
        assert listed.status_code == 200, listed.text
        seen = [c["id"] for c in listed.json()]
        if case["id"] in seen:
            break
        time.sleep(0.2)
    assert case["id"] in seen, f"case not forwarded to {authority['code']} in {FORWARD_TIMEOUT} s"

    detail = http.get(f"/api/v1/cases/{case['id']}", headers=officer).json()
    assert detail["handoff"] == "delivered"
    assert "accept" in detail["available_actions"]
    # Another authority's officer does not see it.
    other = login("310000-public_security-approver")
    assert http.get(f"/api/v1/cases/{case['id']}", headers=other).status_code == 404


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        pytest.param({"competent_jurisdiction": None}, 422, "competent_jurisdiction", id="missing"),
        pytest.param(
            {"matter_code": "NO-SUCH-MATTER"}, (404, 422), "matter_code", id="unknown-matter"
        ),
        pytest.param({"consent": "maybe"}, 422, "consent", id="consent-not-bool"),
        pytest.param(
            {"form_data": ["not", "an", "object"]}, 422, "form_data", id="form-not-object"
        ),
        pytest.param({"attachment_ids": ["not-a-uuid"]}, 422, "attachment_ids", id="bad-uuid"),
        pytest.param(
            {"competent_jurisdiction": 320000}, 422, "competent_jurisdiction", id="int-code"
        ),
        pytest.param({"mode": "teleport"}, 422, "mode", id="unknown-mode"),
        pytest.param({"consent": False}, 422, "consent", id="no-consent"),
    ],
)
def test_bad_application_is_a_problem_not_a_500(
    http: httpx.Client,
    resident: dict[str, str],
    form: Form,
    change: dict[str, Any],
    status: int | tuple[int, ...],
    field: str,
) -> None:
    body = _body(form)
    for key, value in change.items():
        if value is None:
            del body[key]
        else:
            body[key] = value
    r = http.post("/api/v1/cases", json=body, headers=resident)
    _assert_problem(r, status, field)


def test_bad_form_data_names_the_form_field(
    http: httpx.Client, resident: dict[str, str], matter: dict[str, Any], form: Form
) -> None:
    missing = matter["form_schema"]["required"][0]
    del form[missing]
    r = http.post("/api/v1/cases", json=_body(form), headers=resident)
    _assert_problem(r, 422, missing)


def test_missing_materials_and_bad_json_are_problems(
    http: httpx.Client, resident: dict[str, str], matter: dict[str, Any], form: Form
) -> None:
    r = http.post("/api/v1/cases", json=_body(form), headers=resident)
    required = next(m["code"] for m in matter["materials"] if m["required"])
    _assert_problem(r, 422, f"materials.{required}")

    r = http.post(
        "/api/v1/cases",
        content=b"{not json",
        headers={**resident, "content-type": "application/json"},
    )
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"].startswith(PROBLEM)


def test_bad_action_and_rating_are_problems(http: httpx.Client, resident: dict[str, str]) -> None:
    r = http.post("/api/v1/cases/not-a-uuid/actions", json={"action": "accept"}, headers=resident)
    _assert_problem(r, 422, "case_id")
    r = http.post(
        "/api/v1/cases/00000000-0000-4000-8000-000000000000/rating",
        json={"score": 9},
        headers=resident,
    )
    _assert_problem(r, 422, "score")


def test_unauthenticated_is_401_problem(http: httpx.Client) -> None:
    r = http.get("/api/v1/cases")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.headers.get("www-authenticate", "").lower().startswith("bearer")
