"""The evidence API: consent in the application body, the officer's request, the
resident's log, the catalogue."""

from __future__ import annotations

from sqlalchemy import select

from tongban.cases.models import Case
from tongban.evidence import service as evidence

from builders import (
    GJJ,
    GJJ_FORM,
    api_upload,
    drain,
    make_officer,
    make_register_record,
    make_resident,
    make_supervisor,
    online_application,
    token_for,
)


def _apply(client, headers, **kw):
    body = online_application(
        api_upload(client, headers), matter_code=GJJ, form_data=dict(GJJ_FORM), **kw
    )
    return client.post("/api/v1/cases", json=body, headers=headers)


def test_consent_is_given_in_the_application_body(client, session):
    resident = make_resident(session, city="340100")
    h = token_for(client, resident)
    r = _apply(client, h, evidence_consent=["social_insurance"])
    assert r.status_code == 201, r.text
    c = evidence.consent_for(session, r.json()["number"])
    assert c is not None and c.scopes == ["social_insurance"] and c.channel == "online"


def test_an_unknown_consent_scope_is_a_problem_naming_the_field_and_writes_nothing(client, session):
    resident = make_resident(session, city="340100")
    h = token_for(client, resident)
    r = _apply(client, h, evidence_consent=["everything"])
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"] == [
        {"field": "evidence_consent", "message": "未知的证明类型：everything"}
    ]
    assert session.scalar(select(Case).where(Case.applicant_id == resident.id)) is None


def test_officer_requests_over_the_api_and_the_resident_sees_it(client, session, factory):
    resident = make_resident(session, city="340100")
    officer = make_officer(session, "320500-housing_fund")
    make_register_record(session, resident, "social_insurance")
    h = token_for(client, resident)
    case = _apply(client, h, evidence_consent=["household", "social_insurance"]).json()
    drain(factory)
    oh = token_for(client, officer)
    url = f"/api/v1/cases/{case['id']}/evidence"
    body = {"kind": "social_insurance", "purpose": "housing_fund_transfer"}
    early = client.post(url, json=body, headers=oh)  # not yet accepted (受理)
    assert early.status_code == 409 and early.json()["type"].endswith("/case-not-in-handling")
    assert "受理后方可调取证明" in early.json()["detail"]
    accept = client.post(f"/api/v1/cases/{case['id']}/actions", json={"action": "accept"}, headers=oh)  # fmt: skip
    assert accept.status_code == 200, accept.text
    wrong = client.post(url, json=dict(body, purpose="school_transfer"), headers=oh)
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "purpose"
    r = client.post(url, json=body, headers=oh)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "pending" and r.json()["created"] is True
    drain(factory)
    [req] = client.get(url, headers=oh).json()
    assert req["status"] == "answered" and req["kind_label"] == "社会保险缴费记录"
    assert req["data"]["months_paid"] == 120 and "monthly_base" not in req["data"]
    # Once-only: the same request again returns the answered one, 200, no new message.
    again = client.post(url, json=body, headers=oh)
    assert again.status_code == 200 and again.json()["id"] == req["id"]
    assert again.json()["created"] is False

    log = client.get("/api/v1/my/data-use", headers=h).json()
    assert len(log) == 1
    entry = log[0]
    assert entry["requester_authority_name"] == "苏州市住房公积金管理中心"
    assert entry["kind_label"] == "社会保险缴费记录"
    assert entry["purpose_label"] == "住房公积金异地转移接续"
    assert entry["case_number"] == case["number"] and entry["outcome_label"] == "已提供"
    assert "累计缴费月数" in entry["fields"] and entry["subject_masked"] is None

    stranger = make_resident(session, city="340100")
    assert client.get("/api/v1/my/data-use", headers=token_for(client, stranger)).json() == []
    assert client.get("/api/v1/my/data-use", headers=oh).status_code == 403
    sup = client.get(
        "/api/v1/supervision/data-use",
        headers=token_for(client, make_supervisor(session, "340000")),
    ).json()
    assert len(sup) == 1 and "*" in sup[0]["subject_masked"]


def test_non_handlers_cannot_request_over_the_api(client, session, factory):
    resident = make_resident(session, city="340100")
    h = token_for(client, resident)
    case = _apply(client, h, evidence_consent=["household"]).json()
    drain(factory)
    url = f"/api/v1/cases/{case['id']}/evidence"
    body = {"kind": "household", "purpose": "housing_fund_transfer"}
    other = token_for(client, make_officer(session, "320500-public_security"))
    assert client.post(url, json=body, headers=other).status_code == 404
    assert client.post(url, json=body, headers=h).status_code == 403
    sup = token_for(client, make_supervisor(session, "320000"))
    assert client.post(url, json=body, headers=sup).status_code == 403
    assert client.get(url, headers=sup).json() == []  # read-only view is allowed
    handler = token_for(client, make_officer(session, "320500-housing_fund"))
    client.post(f"/api/v1/cases/{case['id']}/actions", json={"action": "accept"}, headers=handler)  # fmt: skip
    bad = client.post(url, json={"kind": "dna", "purpose": "x"}, headers=handler)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "kind"


def test_the_catalogue_is_public_reference_data(client):
    r = client.get("/api/v1/evidence/catalogue")
    assert r.status_code == 200
    kinds = {k["code"]: k for k in r.json()["kinds"]}
    assert kinds["social_insurance"]["provider"] == "choose"
    assert "monthly_base" not in kinds["social_insurance"]["fields"]
    purposes = {p["code"]: p for p in r.json()["purposes"]}
    assert purposes["housing_fund_transfer"]["matters"] == [GJJ]


def test_the_applicant_withdraws_consent_over_the_api(client, session, factory):
    resident = make_resident(session, city="340100")
    h = token_for(client, resident)
    case = _apply(client, h, evidence_consent=["household", "social_insurance"]).json()
    [c] = client.get("/api/v1/my/evidence-consents", headers=h).json()
    assert c["case_number"] == case["number"] and c["active_scopes"] == ["household", "social_insurance"]  # fmt: skip
    url = f"/api/v1/my/evidence-consents/{case['number']}/withdraw"
    r = client.post(url, json={"kind": "household"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["active_scopes"] == ["social_insurance"]
    assert [w["kind"] for w in r.json()["withdrawals"]] == ["household"]
    again = client.post(url, json={"kind": "household"}, headers=h)
    assert again.status_code == 422 and again.json()["errors"][0]["field"] == "kind"
    other = token_for(client, make_resident(session, city="340100"))
    assert client.post(url, json={"kind": "social_insurance"}, headers=other).status_code == 404
