"""The JSON API: happy path, and bad input answered with 4xx problem+json, never 500,
with nothing written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tongban.cases.models import Attachment, Case
from tongban.exchange.models import OutboxMessage
from tongban.exchange.service import dispatch_pending

from builders import (
    TINY_PDF,
    make_officer,
    make_resident,
    online_application,
    token_for,
)


def _upload(client, headers, code="id_card", data=TINY_PDF, name="id.pdf"):
    return client.post(
        "/api/v1/attachments",
        headers=headers,
        data={"material_code": code},
        files={"file": (name, data, "application/pdf")},
    )


def _counts(session):
    return (
        session.scalar(select(func.count()).select_from(Case)),
        session.scalar(select(func.count()).select_from(OutboxMessage)),
    )


def test_submit_follow_and_handle_over_the_api(client, session, factory):
    resident = make_resident(session)
    officer = make_officer(session, "320500-housing_fund")
    h = token_for(client, resident)
    att = _upload(client, h)
    assert att.status_code == 201, att.text
    assert att.json()["content_type"] == "application/pdf" and len(att.json()["sha256"]) == 64
    r = client.post("/api/v1/cases", json=online_application(att.json()["id"]), headers=h)
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["state"] == "submitted" and case["handoff"] == "pending"
    assert case["events"][0]["action"] == "submit"
    oh = token_for(client, officer)
    assert client.get("/api/v1/cases", headers=oh).json() == []
    dispatch_pending(factory)
    listed = client.get("/api/v1/cases", headers=oh).json()
    assert [c["number"] for c in listed] == [case["number"]]
    for action in ("accept", "start_review", "approve", "issue_result", "deliver"):
        r = client.post(f"/api/v1/cases/{case['id']}/actions", json={"action": action}, headers=oh)
        assert r.status_code == 200, r.text
    r = client.post(
        f"/api/v1/cases/{case['id']}/rating", json={"score": 4, "comment": "好"}, headers=h
    )
    assert r.status_code == 201 and r.json()["rectification_opened"] is False
    mine = client.get(f"/api/v1/cases/{case['id']}", headers=h).json()
    assert mine["state"] == "rated" and mine["deadline"] is not None
    assert [e["to_state"] for e in mine["events"]][-1] == "rated"


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda b: b.pop("matter_code"), "matter_code"),
        (lambda b: b.update(consent="maybe"), "consent"),
        (lambda b: b.update(form_data={"proof_purpose": "胡乱"}), "form_data.proof_purpose"),
        (lambda b: b.update(form_data={}), "form_data.proof_purpose"),
        (lambda b: b["form_data"].update(smuggled="x"), "form_data.form"),
        (lambda b: b.update(consent=False), "consent"),
        (lambda b: b.update(mode="teleport"), "mode"),
        (lambda b: b.update(delivery_method="post"), "delivery_address"),
        (lambda b: b.update(competent_city="340100"), "competent_city"),
        (lambda b: b.update(attachment_ids=["not-a-uuid"]), "attachment_ids.0"),
        (lambda b: b.update(attachment_ids=[]), "materials.id_card"),
        (lambda b: b.update(competent_jurisdiction="99"), "competent_jurisdiction"),
    ],
)
def test_bad_submissions_get_problem_json_naming_the_field(client, session, mutate, field):
    resident = make_resident(session)
    h = token_for(client, resident)
    att = _upload(client, h).json()["id"]
    before = _counts(session)
    body = online_application(att)
    mutate(body)
    r = client.post("/api/v1/cases", json=body, headers=h)
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["status"] == r.status_code and problem["detail"]
    assert field in [e["field"] for e in problem.get("errors", [])], problem
    assert _counts(session) == before


def test_unknown_matter_and_malformed_json(client, session):
    h = token_for(client, make_resident(session))
    r = client.post(
        "/api/v1/cases",
        json=online_application(None, matter_code="NOPE", attachment_ids=[]),
        headers=h,
    )
    assert r.status_code == 404 and r.json()["type"].endswith("unknown-matter")
    r = client.post(
        "/api/v1/cases", content=b"{not json", headers={**h, "content-type": "application/json"}
    )
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")


def test_uploads_are_checked_for_type_and_size(client, session):
    h = token_for(client, make_resident(session))
    before = session.scalar(select(func.count()).select_from(Attachment))
    r = _upload(client, h, data=b"MZ\x90\x00 an executable", name="id.pdf")
    assert r.status_code == 415 and r.json()["errors"][0]["field"] == "materials.id_card"
    r = _upload(client, h, data=TINY_PDF + b"0" * 300_000)
    assert r.status_code == 413
    r = _upload(client, h, data=b"")
    assert r.status_code == 422
    assert session.scalar(select(func.count()).select_from(Attachment)) == before
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
    r = _upload(client, h, data=png, name="photo.pdf")
    assert r.status_code == 201 and r.json()["content_type"] == "image/png"


def test_unknown_action_and_missing_reason(client, session, factory):
    resident = make_resident(session)
    officer = make_officer(session, "320500-housing_fund")
    h = token_for(client, resident)
    case = client.post(
        "/api/v1/cases", json=online_application(_upload(client, h).json()["id"]), headers=h
    ).json()
    dispatch_pending(factory)
    oh = token_for(client, officer)
    r = client.post(f"/api/v1/cases/{case['id']}/actions", json={"action": "fly"}, headers=oh)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "action"
    r = client.post(f"/api/v1/cases/{case['id']}/actions", json={"action": "deny"}, headers=oh)
    assert r.status_code == 409 and "不能执行" in r.json()["detail"]
    r = client.post(f"/api/v1/cases/{case['id']}/actions", json={"action": "refuse"}, headers=oh)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "comment"
    r = client.post("/api/v1/cases/not-a-uuid/actions", json={"action": "accept"}, headers=oh)
    assert r.status_code == 422
    r = client.post(f"/api/v1/cases/{case['id']}/rating", json={"score": 9}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "score"
