"""The case use cases against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from tongban.cases import service
from tongban.cases.models import Case, CaseEvent, Rectification
from tongban.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tongban.exchange.models import InboxMessage, OutboxMessage
from tongban.exchange.service import dispatch_pending

from builders import (
    SIMPLE_FORM,
    SIMPLE_MATTER,
    make_case,
    make_clerk,
    make_officer,
    make_resident,
    upload,
)

OFFICER_AUTH = "320500-housing_fund"


def walk(session, officer, case, *steps):
    for action, comment in steps:
        case = service.act(session, officer, case.id, action, comment)
    return case


def test_online_submission_routes_to_competent_city_authority_through_the_outbox(session):
    resident = make_resident(session, city="340100")
    case = make_case(session, resident, dispatch=False)
    assert case.state == "submitted"
    assert case.handoff == "pending"
    assert case.authority_name == "苏州市住房公积金管理中心"
    assert case.receiving_jurisdiction == "340000" and case.competent_jurisdiction == "320000"
    assert case.number.startswith("340100")

    def forwarded() -> OutboxMessage | None:
        return session.scalar(
            select(OutboxMessage).where(OutboxMessage.payload["number"].as_string() == case.number)
        )

    # The snapshot is written with the case, in the submission's one flush (issue 14;
    # tests/integration/cases/test_submission_flush.py), and commits with it.
    session.commit()
    msg = forwarded()
    assert msg is not None and msg.type == "case.forwarded" and msg.target_jurisdiction == "320000"
    assert [e["action"] for e in msg.payload["events"]] == ["submit"]
    assert msg.payload["authority_code"] == OFFICER_AUTH
    assert [a["sha256"] for a in msg.payload["attachments"]] == [a.sha256 for a in case.attachments]
    officer = make_officer(session, OFFICER_AUTH)
    # Not in the officer's queue until the handoff message has been delivered.
    assert case not in service.list_cases(session, officer)


def test_dispatcher_delivers_once_and_is_idempotent(session, factory):
    officer = make_officer(session, OFFICER_AUTH)
    case = make_case(session, dispatch=False)
    session.commit()
    assert dispatch_pending(factory) >= 1
    session.expire_all()
    assert session.get(Case, case.id).handoff == "delivered"
    assert case.id in {c.id for c in service.list_cases(session, officer)}
    events = [e.action for e in session.get(Case, case.id).events]
    assert events == ["submit", "forwarded"]
    # The receipt goes back to the receiving side through the outbox like any step: on
    # one node its copy is the same row, and applying it changes nothing.
    (receipt,) = session.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending"))
    assert receipt.type == "case.status_changed" and receipt.target_jurisdiction == "340000"
    assert receipt.payload["event"]["action"] == "forwarded" and receipt.payload["seq"] == 2
    assert dispatch_pending(factory) == 1
    session.expire_all()
    assert [e.action for e in session.get(Case, case.id).events] == events
    # A further pass finds nothing to do; the inbox holds each message once.
    assert dispatch_pending(factory) == 0
    n = session.scalar(select(func.count()).select_from(InboxMessage))
    assert n == session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "delivered")
    )


def test_full_lifecycle_with_events_deadline_and_rating(session):
    resident = make_resident(session)
    reviewer = make_officer(session, OFFICER_AUTH, duty="reviewer")
    approver = make_officer(session, OFFICER_AUTH, duty="approver")
    case = make_case(session, resident)
    case = service.act(session, reviewer, case.id, "accept", "材料齐全")
    assert case.deadline is not None and case.deadline >= date.today()
    case = service.act(session, reviewer, case.id, "start_review")
    with pytest.raises(Conflict):
        service.act(session, reviewer, case.id, "approve")  # reviewers do not approve
    case = walk(
        session, approver, case, ("approve", "符合条件"), ("issue_result", ""), ("deliver", "")
    )
    assert case.state == "delivered" and case.result_text
    rating = service.rate(session, resident, case.id, 5, "很方便")
    assert rating.score == 5 and case.state == "rated"
    events = session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq)
    ).all()
    assert [e.action for e in events] == [
        "submit",
        "forwarded",
        "accept",
        "start_review",
        "approve",
        "issue_result",
        "deliver",
        "rate",
    ]
    assert events[2].from_state == "submitted" and events[2].to_state == "accepted"
    assert events[2].actor_id == reviewer.id and events[2].comment == "材料齐全"


def test_illegal_transition_is_refused_with_a_clear_error(session):
    approver = make_officer(session, OFFICER_AUTH)
    case = make_case(session)
    with pytest.raises(Conflict) as e:
        service.act(session, approver, case.id, "deliver")
    assert "不能执行" in e.value.detail
    assert case.state == "submitted"


def test_refusal_needs_a_reason(session):
    approver = make_officer(session, OFFICER_AUTH)
    case = make_case(session)
    with pytest.raises(ValidationFailed) as e:
        service.act(session, approver, case.id, "refuse", "  ")
    assert e.value.errors[0]["field"] == "comment"
    case = service.act(session, approver, case.id, "refuse", "不属于本部门职责")
    assert case.state == "refused" and case.closed_at is not None


def test_correction_and_resubmission(session):
    resident = make_resident(session)
    approver = make_officer(session, OFFICER_AUTH)
    case = make_case(session, resident)
    service.act(session, approver, case.id, "request_correction", "请补充贷款城市")
    with pytest.raises(ValidationFailed):
        service.resubmit(session, resident, case.id, {"proof_purpose": "不存在的用途"})
    extra = upload(session, resident, "id_card")
    case = service.resubmit(
        session, resident, case.id, {**SIMPLE_FORM, "loan_city": "合肥"}, [extra.id]
    )
    assert case.state == "submitted" and case.form_data["loan_city"] == "合肥"
    assert len(case.attachments) == 2


def test_bad_rating_opens_rectification_for_the_authority(session):
    resident = make_resident(session)
    approver = make_officer(session, OFFICER_AUTH)
    case = make_case(session, resident)
    with pytest.raises(PermissionDenied):
        service.rate(session, approver, case.id, 1, "x")
    walk(
        session,
        approver,
        case,
        ("accept", ""),
        ("start_review", ""),
        ("approve", ""),
        ("issue_result", ""),
        ("deliver", ""),
    )
    with pytest.raises(ValidationFailed):
        service.rate(session, resident, case.id, 2, "")  # 差评 must say why
    service.rate(session, resident, case.id, 2, "等待时间过长")
    items = service.list_rectifications(session, approver)
    assert [i.case_id for i in items] == [case.id]
    other = make_officer(session, "320100-housing_fund")
    assert service.list_rectifications(session, other) == []
    service.reply_rectification(session, approver, items[0].id, "已优化流程")
    assert session.get(Rectification, items[0].id).status == "replied"
    with pytest.raises(Conflict):
        service.rate(session, resident, case.id, 5, "")  # rated once


def test_consent_mode_and_form_are_validated_and_nothing_is_written(session):
    resident = make_resident(session)
    before = session.scalar(select(func.count()).select_from(Case))
    att = upload(session, resident)
    bad = [
        dict(consent=False),
        dict(mode="proxy"),
        dict(form_data={"proof_purpose": "随便"}),
        dict(competent_city="340100"),  # 合肥 is not in 江苏
        dict(matter_code="NO-SUCH"),
    ]
    for overrides in bad:
        app = service.Application(
            matter_code=SIMPLE_MATTER,
            competent_jurisdiction="320000",
            competent_city="320500",
            form_data=dict(SIMPLE_FORM),
            consent=True,
            attachment_ids=[att.id],
        )
        for k, v in overrides.items():
            setattr(app, k, v)
        with pytest.raises((ValidationFailed, NotFound)), session.begin_nested():
            service.submit_online(session, resident, app)
    assert session.scalar(select(func.count()).select_from(Case)) == before


def test_required_materials_are_enforced(session):
    resident = make_resident(session)
    app = service.Application(
        matter_code=SIMPLE_MATTER,
        competent_jurisdiction="320000",
        competent_city="320500",
        form_data=dict(SIMPLE_FORM),
        consent=True,
    )
    with pytest.raises(ValidationFailed) as e:
        service.submit_online(session, resident, app)
    assert e.value.type == "materials-missing"
    assert e.value.errors[0]["field"] == "materials.id_card"


def test_uploads_cannot_be_reused_or_borrowed(session):
    a, b = make_resident(session), make_resident(session)
    att = upload(session, a)
    app = service.Application(
        matter_code=SIMPLE_MATTER,
        competent_jurisdiction="320000",
        competent_city="320500",
        form_data=dict(SIMPLE_FORM),
        consent=True,
        attachment_ids=[att.id],
    )
    with pytest.raises(PermissionDenied):
        service.submit_online(session, b, app)
    service.submit_online(session, a, app)
    with pytest.raises(PermissionDenied):
        service.submit_online(session, a, app)


def test_window_clerk_receives_for_another_jurisdiction(session):
    clerk = make_clerk(session, "310000")
    resident = make_resident(session, city="340100")
    att = upload(session, clerk, "id_card")
    app = service.Application(
        matter_code="YRD-GA-0002",
        competent_jurisdiction="320000",
        competent_city="320500",
        form_data={
            "proof_type": "户籍信息证明",
            "subject_name": "王芳",
            "subject_id_number": resident.id_number,
            "purpose": "办理入学",
        },
        consent=True,
        attachment_ids=[att.id],
    )
    applicant = service.WindowApplicant(
        name="王芳",
        identifier=resident.id_number or "",
        identity_verified=False,
        materials_checked=True,
    )
    with pytest.raises(ValidationFailed) as e:
        service.submit_at_window(session, clerk, applicant, app)
    assert e.value.errors[0]["field"] == "identity_verified"
    applicant.identity_verified = True
    case = service.submit_at_window(session, clerk, applicant, app)
    assert case.channel == "window" and case.mode == "proxy"
    assert case.receiving_city == "310000" and case.competent_jurisdiction == "320000"
    assert case.applicant_id == resident.id  # linked to the resident's account
    assert case.authority_name == "苏州市公安局"
    assert case in service.list_cases(session, clerk)
    assert case in service.list_cases(session, resident)
    other_clerk = make_clerk(session, "320500")
    assert case not in service.list_cases(session, other_clerk)


def test_window_applicant_id_number_is_validated(session):
    clerk = make_clerk(session, "310000")
    applicant = service.WindowApplicant(
        name="某人", identifier="110105194912310021", identity_verified=True, materials_checked=True
    )
    app = service.Application(
        matter_code="YRD-GA-0002",
        competent_jurisdiction="320000",
        competent_city="320500",
        consent=True,
    )
    with pytest.raises(ValidationFailed) as e:
        service.submit_at_window(session, clerk, applicant, app)
    fields = {err["field"] for err in e.value.errors}
    # The applicant's and the application's faults come back together.
    assert {"applicant_identifier", "form_data.proof_type"} <= fields


def test_joint_application_fans_out_and_completes_when_all_subtasks_do(session):
    resident = make_resident(session, city="340100")
    case = make_case(
        session,
        resident,
        matter="YRD-GJJ-0001",
        jurisdiction="340000",
        city="340100",
        form={
            "out_center": "苏州市住房公积金管理中心",
            "out_account": "12345678",
            "in_center": "合肥市住房公积金管理中心",
            "new_employer": "合肥某公司",
        },
        mode="joint",
        joint_jurisdictions=["320000"],
    )
    assert len(case.subtasks) == 1
    sub = case.subtasks[0]
    assert sub.competent_jurisdiction == "320000" and sub.handoff == "delivered"
    lead = make_officer(session, "340100-housing_fund")
    partner = make_officer(session, sub.authority_name and _code_of(session, sub))
    walk(session, lead, case, ("accept", ""), ("start_review", ""))
    with pytest.raises(Conflict, match="子任务"):
        service.act(session, lead, case.id, "approve")
    walk(session, partner, sub, ("accept", ""), ("start_review", ""), ("approve", "同意转出"))
    session.refresh(case)
    assert case.state == "approved"
    assert case.events[-1].actor_role == "system"


def _code_of(session, case):
    from tongban.regions.models import Authority

    return session.get(Authority, case.authority_id).code


def test_deadline_flags_are_refreshed(session):
    approver = make_officer(session, OFFICER_AUTH)
    case = make_case(session)
    service.act(session, approver, case.id, "accept")
    case.deadline = date(2026, 11, 27)
    service.refresh_deadlines(session, date(2026, 11, 16), 2)
    assert case.deadline_flag == "ok"
    service.refresh_deadlines(session, date(2026, 11, 26), 2)
    assert case.deadline_flag == "approaching"
    service.refresh_deadlines(session, date(2026, 11, 30), 2)
    assert case.deadline_flag == "overdue"
    assert case in service.list_cases(session, approver, deadline_flag="overdue")
