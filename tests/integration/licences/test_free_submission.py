"""免提交: an applicant's e-licence stands in for a material. Verified at submission (a
rejected licence fails the material with the reason) and again when the officer
approves (refused once the licence is revoked); the case shows which licence, when."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.cases import service as cases
from tongban.errors import Conflict, ValidationFailed
from tongban.exchange.models import OutboxMessage
from tongban.exchange.service import apply_locally
from tongban.kernel import replication
from tongban.licences import service as licences
from tongban.licences.models import LicenceUse

from builders import (
    SIMPLE_FORM,
    SIMPLE_MATTER,
    make_licence,
    make_officer,
    make_resident,
    token_for,
)


def _apply(session: Session, resident, chosen):  # type: ignore[no-untyped-def]
    app = cases.Application(
        matter_code=SIMPLE_MATTER,  # only the ID card is required
        competent_jurisdiction="320000",
        competent_city="320500",
        form_data=dict(SIMPLE_FORM),
        consent=True,
        licences=chosen,
    )
    case = cases.submit_online(session, resident, app)
    replication.send_now(session)  # the hand-over is written at commit: now
    for msg in session.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending")):
        apply_locally(session, msg)
        msg.status = "delivered"
    session.flush()
    return case


def test_licence_replaces_the_upload_and_is_reverified(session: Session) -> None:
    resident = make_resident(session)
    lic = make_licence(session, resident)
    case = _apply(session, resident, {"id_card": lic.id})
    assert case.attachments == []
    uses = licences.uses_for_case(session, case.id)
    assert [(u["material_code"], u["identifier"], u["valid"], u["stage"]) for u in uses] == [
        ("id_card", lic.identifier, True, "submission")
    ]
    approver = make_officer(session, "320500-housing_fund")
    cases.act(session, approver, case.id, "accept")
    cases.act(session, approver, case.id, "start_review")
    # the licence is revoked before the decision: approval is refused with the reason
    police = make_officer(session, "340100-public_security")
    licences.change_status(session, police, lic.id, "revoke", "证件作废")
    with pytest.raises(Conflict) as e:
        cases.act(session, approver, case.id, "approve")
    assert "已撤销" in e.value.detail and lic.identifier in e.value.detail
    assert case.state == "under_review"


def test_approval_records_the_second_verification(session: Session) -> None:
    resident = make_resident(session)
    lic = make_licence(session, resident)
    case = _apply(session, resident, {"id_card": str(lic.id)})
    approver = make_officer(session, "320500-housing_fund")
    for action in ("accept", "start_review", "approve"):
        cases.act(session, approver, case.id, action)
    stages = session.scalars(
        select(LicenceUse.stage).where(LicenceUse.case_id == case.id).order_by(LicenceUse.stage)
    ).all()
    assert stages == ["decision", "submission"]
    assert licences.uses_for_case(session, case.id)[0]["stage"] == "decision"


def test_rejected_licence_fails_the_material(session: Session) -> None:
    resident = make_resident(session)
    lic = make_licence(session, resident)
    police = make_officer(session, "340100-public_security")
    licences.change_status(session, police, lic.id, "suspend", "核查")
    with pytest.raises(ValidationFailed) as e:
        _apply(session, resident, {"id_card": lic.id})
    assert e.value.errors == [
        {"field": "materials.id_card", "message": "电子证照居民身份证验证未通过：已暂停"}
    ]
    # someone else's licence, or one of the wrong type, is refused too
    other = make_licence(session, make_resident(session))
    with pytest.raises(ValidationFailed) as e:
        _apply(session, resident, {"id_card": other.id})
    assert e.value.errors[0]["field"] == "materials.id_card"
    dl = make_licence(session, resident, "driving_licence")
    with pytest.raises(ValidationFailed) as e:
        _apply(session, resident, {"id_card": dl.id})
    assert "不是居民身份证" in e.value.errors[0]["message"]


def test_free_submission_over_the_api(client, session) -> None:  # type: ignore[no-untyped-def]
    resident = make_resident(session)
    lic = make_licence(session, resident)
    h = token_for(client, resident)
    body = {
        "matter_code": SIMPLE_MATTER,
        "competent_jurisdiction": "320000",
        "competent_city": "320500",
        "form_data": dict(SIMPLE_FORM),
        "consent": True,
        "licences": {"id_card": str(lic.id)},
    }
    r = client.post("/api/v1/cases", headers=h, json=body)
    assert r.status_code == 201, r.text
    assert r.json()["attachments"] == []
    # without the licence (and without an upload) the material is missing
    r = client.post("/api/v1/cases", headers=h, json={**body, "licences": {}})
    assert r.status_code == 422
    assert "materials.id_card" in [e["field"] for e in r.json()["errors"]]
