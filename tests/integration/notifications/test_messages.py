"""The message centre hears steps of records through the kernel's history (no context
calls it) and tells the right accounts, in Chinese (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from tongban.cases import service as cases
from tongban.db import utcnow
from tongban.errors import NotFound, ValidationFailed
from tongban.kernel import events
from tongban.notifications import service
from tongban.notifications.domain import ChannelName
from tongban.notifications.models import Delivery, Message

from builders import (
    make_case,
    make_filing,
    make_hospital_staff,
    make_institution,
    make_insured,
    make_licence,
    make_officer,
    make_resident,
    make_work_order,
)

OFFICER_AUTH = "320500-housing_fund"


def topics(session, account) -> list[str]:
    session.flush()
    return list(
        session.scalars(
            select(Message.topic)
            .where(Message.account_id == account.id)
            .order_by(Message.created_at, Message.topic)
        )
    )


def walk(session, officer, case, *steps):
    for action, comment in steps:
        case = cases.act(session, officer, case.id, action, comment)
    return case


def test_a_case_tells_staff_of_new_work_and_the_applicant_of_each_decision(session):
    officer = make_officer(session, OFFICER_AUTH)
    other_authority = make_officer(session, "340100-public_security")
    resident = make_resident(session)
    case = make_case(session, resident)
    # New work reaches the competent authority's staff only.
    assert topics(session, officer) == ["case.new"]
    assert topics(session, other_authority) == []
    assert topics(session, resident) == []  # not told of one's own submission
    walk(session, officer, case, ("accept", ""), ("start_review", ""), ("approve", "符合条件"))
    walk(session, officer, case, ("issue_result", ""), ("deliver", ""))
    assert topics(session, resident) == [
        "case.accepted",
        "case.approved",
        "case.result",
        "case.delivered",
    ]
    accepted = session.scalar(
        select(Message).where(Message.account_id == resident.id, Message.topic == "case.accepted")
    )
    assert accepted.title == "您的办件已受理"
    assert case.number in accepted.body and accepted.link == f"/my/cases/{case.id}"
    assert accepted.record_kind == "service_case" and accepted.record_id == case.id
    # The officer who acted is not told of their own steps.
    assert topics(session, officer) == ["case.new"]


def test_correction_refusal_and_denial_reach_the_applicant(session):
    officer = make_officer(session, OFFICER_AUTH)
    resident = make_resident(session)
    corrected = make_case(session, resident)
    cases.act(session, officer, corrected.id, "request_correction", "身份证复印件不清晰")
    refused = make_case(session, resident)
    cases.act(session, officer, refused.id, "refuse", "不属于本机关职权范围")
    denied = make_case(session, resident)
    walk(session, officer, denied, ("accept", ""), ("start_review", ""), ("deny", "不符合条件"))
    assert set(topics(session, resident)) == {
        "case.correction",
        "case.refused",
        "case.accepted",
        "case.denied",
    }
    denial = session.scalar(
        select(Message).where(Message.account_id == resident.id, Message.topic == "case.denied")
    )
    assert "行政复议" in denial.body and denied.number in denial.body


def test_licence_issue_and_revocation_reach_the_holder(session):
    resident = make_resident(session)
    officer = make_officer(session, "340100-public_security")
    lic = make_licence(session, resident)
    assert topics(session, resident) == ["licence.issued"]
    from tongban.licences import service as licences

    licences.change_status(session, officer, lic.id, "revoke", "证件信息有误")
    assert topics(session, resident) == ["licence.issued", "licence.revoked"]
    revoked = session.scalar(
        select(Message).where(Message.account_id == resident.id, Message.topic == "licence.revoked")
    )
    assert revoked.title == "电子证照已撤销" and revoked.link == f"/my/licences/{lic.id}"


def test_work_order_dispatch_tells_the_authority_and_updates_tell_the_reporter(session):
    from tongban.tickets import service as tickets

    reporter = make_resident(session, city="320500")
    wo = make_work_order(session, reporter)
    assert wo.state == "dispatched" and wo.authority_id is not None
    staff = [
        m.account_id
        for m in session.scalars(select(Message).where(Message.topic == "ticket.new"))
        if m.record_id == wo.id
    ]
    officer = make_officer(session, _authority_code(session, wo.authority_id), duty="reviewer")
    assert officer.id not in staff  # made after the dispatch: not told of it
    tickets.act(session, officer, wo.id, "accept")
    tickets.act(session, officer, wo.id, "start", "已安排人员")
    assert topics(session, reporter) == ["ticket.accepted", "ticket.started"]
    msg = session.scalar(
        select(Message).where(Message.account_id == reporter.id, Message.topic == "ticket.started")
    )
    assert wo.number in msg.body and msg.link == f"/tickets/{wo.id}"


def test_staff_already_in_post_hear_of_a_dispatched_work_order(session):
    probe = make_work_order(session)
    code = _authority_code(session, probe.authority_id)
    officer = make_officer(session, code, duty="reviewer")
    wo = make_work_order(session)
    assert wo.authority_id == probe.authority_id
    msgs = session.scalars(select(Message).where(Message.account_id == officer.id)).all()
    assert [(m.topic, m.record_id) for m in msgs] == [("ticket.new", wo.id)]
    assert msgs[0].title == f"新工单待签收：工单 {wo.number}"


def test_a_settlement_reversed_reaches_the_insured_person(session):
    from tongban.medical import service as medical
    from tongban.medical import settlement

    inst = make_institution(session, "310000", level=3, district="310104")
    staff = make_hospital_staff(session, inst)
    person = make_insured(session, "340100", balance=1_000_000)
    resident = make_resident(session, id_number=person.id_number)
    make_filing(session, person, "310000")
    visit = medical.register_visit(session, staff, id_number=person.id_number, visit_no="V1")
    medical.upload_items(session, staff, visit.id, [medical.ItemInput("T0001", 1, 2_500)])
    settlement.settle(session, staff, visit.id, "T-1")
    # The counter's queries of the person's insurance are uses of their data.
    assert set(topics(session, resident)) == {"data.used"}
    s = settlement.reverse(session, staff, "T-1", reversal_txn_id="R-1", reason="收费错误")
    settlement.sync_with_insured(session, s)
    assert [t for t in topics(session, resident) if t != "data.used"] == ["medical.reversed"]
    msg = session.scalar(
        select(Message).where(
            Message.account_id == resident.id, Message.topic == "medical.reversed"
        )
    )
    assert "T-1" in msg.body and inst.name in msg.body


def test_a_use_of_data_reaches_the_person_once(session):
    resident = make_resident(session)
    use_id = uuid.uuid4()
    ev = events.DataUsed(
        use_id=use_id,
        subject_identifier=resident.id_number,
        user_name="上海市某医院",
        kind_label="医保参保信息",
        purpose_label="异地就医结算",
    )
    events.publish(session, ev)
    events.publish(session, ev)  # a redelivered copy: still one message
    (msg,) = session.scalars(select(Message).where(Message.account_id == resident.id)).all()
    assert msg.topic == "data.used" and msg.link == "/my/data-use"
    assert "上海市某医院调取了您的医保参保信息，用于异地就医结算" in msg.body


def test_evidence_logging_a_use_announces_it(session):
    from tongban.benefits import service as benefits  # declares a data use
    from tongban.evidence import service as evidence

    resident = make_resident(session)
    evidence.record_data_use(
        session,
        use_id=uuid.uuid4(),
        subject_identifier=resident.id_number,
        subject_name=resident.display_name,
        user_code="X",
        user_name="某区民政局",
        user_jurisdiction="340000",
        operator_name="系统",
        kind=benefits.KIND.code,
        purpose=benefits.PURPOSE.code,
        holder_jurisdiction="340000",
        answered=True,
        requested_at=utcnow(),
    )
    (msg,) = session.scalars(select(Message).where(Message.account_id == resident.id)).all()
    assert msg.topic == "data.used" and "某区民政局" in msg.body


def test_inbox_paging_read_and_read_all(session):
    from tongban.notifications import domain

    resident = make_resident(session)
    other = make_resident(session)
    rule = domain.rules_for(domain.CASE, "accept")[0]
    for i in range(25):
        service.post(
            session, [resident.id], rule, f"办件 {i}", link="/x", record=None, dedupe=f"t:{i}"
        )
    assert service.unread_count(session, resident.id) == 25
    first = service.inbox(session, resident, 1)
    assert (len(first.messages), first.pages, first.total, first.unread) == (20, 2, 25, 25)
    second = service.inbox(session, resident, 2)
    assert len(second.messages) == 5
    assert not {m.id for m in first.messages} & {m.id for m in second.messages}
    service.mark_read(session, resident, first.messages[0].id)
    assert service.unread_count(session, resident.id) == 24
    assert service.inbox(session, resident, 1, unread_only=True).total == 24
    with pytest.raises(NotFound):
        service.mark_read(session, other, first.messages[1].id)
    assert service.mark_all_read(session, resident) == 24
    assert service.unread_count(session, resident.id) == 0


def test_preferences_are_validated_and_chosen_channels_get_deliveries(session):
    from tongban.notifications import domain

    resident = make_resident(session)
    both = (ChannelName.EMAIL, ChannelName.SMS)
    with pytest.raises(ValidationFailed) as e:
        service.set_preferences(
            session,
            resident,
            email="not-an-address",
            phone="12345",
            by_email=True,
            by_sms=True,
            available=both,
        )
    assert {err["field"] for err in e.value.errors} == {"email", "phone"}
    with pytest.raises(ValidationFailed) as e:
        service.set_preferences(
            session,
            resident,
            email="a@example.com",
            phone=None,
            by_email=True,
            by_sms=False,
            available=(ChannelName.SMS,),
        )
    assert [err["field"] for err in e.value.errors] == ["by_email"]
    service.set_preferences(
        session,
        resident,
        email="zhang.san@example.com",
        phone="138 0013 8000",
        by_email=True,
        by_sms=True,
        available=both,
    )
    rule = domain.rules_for(domain.CASE, "approve")[0]
    (msg,) = service.post(
        session, [resident.id], rule, "办件 1", link=None, record=None, dedupe="k"
    )
    got = {(d.channel, d.address, d.state) for d in service.deliveries_of(session, msg.id)}
    assert got == {
        ("email", "zhang.san@example.com", "pending"),
        ("sms", "13800138000", "pending"),
    }
    # An account that chose nothing gets the message centre only.
    quiet = make_resident(session)
    (msg2,) = service.post(session, [quiet.id], rule, "办件 2", link=None, record=None, dedupe="k")
    assert service.deliveries_of(session, msg2.id) == []
    assert session.scalars(select(Delivery).where(Delivery.message_id == msg2.id)).all() == []


def _authority_code(session, authority_id):
    from tongban.regions.models import Authority

    return session.get(Authority, authority_id).code


def test_officers_hear_once_of_cases_near_or_past_their_deadline(session):
    reviewer = make_officer(session, OFFICER_AUTH, duty="reviewer")
    approver = make_officer(session, OFFICER_AUTH)
    elsewhere = make_officer(session, "340100-public_security")
    near = make_case(session)
    late = make_case(session)
    quiet = make_case(session)
    for case in (near, late, quiet):
        cases.act(session, approver, case.id, "accept")
    # The cases worker keeps these flags (cases.service.refresh_deadlines).
    near.deadline_flag, late.deadline_flag = "approaching", "overdue"
    session.flush()
    assert service.warn_case_deadlines(session) == 4  # two cases x two officers
    for officer in (reviewer, approver):
        told = {
            (m.topic, m.record_id)
            for m in session.scalars(select(Message).where(Message.account_id == officer.id))
        }
        assert ("case.deadline", near.id) in told and ("case.overdue", late.id) in told
        assert not any(rid == quiet.id for t, rid in told if t in ("case.deadline", "case.overdue"))
    assert topics(session, elsewhere) == []
    assert service.warn_case_deadlines(session) == 0  # told once


def test_a_channel_chosen_after_a_message_applies_to_the_next_one(session):
    """The channel choices are cached per process (issue 14): a change made since is seen
    by the very next message, and one that chose nothing still gets its message."""
    from tongban.notifications import domain

    resident = make_resident(session)
    rule = domain.rules_for(domain.CASE, "approve")[0]

    def deliveries(key: str) -> set[str]:
        (msg,) = service.post(
            session, [resident.id], rule, "办件", link=None, record=None, dedupe=key
        )
        assert session.get(Message, msg.id) is not None
        return {d.channel for d in service.deliveries_of(session, msg.id)}

    assert deliveries("a") == set()
    assert deliveries("b") == set()  # answered from the cache when it may be
    sms = (ChannelName.SMS,)
    service.set_preferences(
        session, resident, email=None, phone="13800138000", by_email=False, by_sms=True,
        available=sms,
    )  # fmt: skip
    assert deliveries("c") == {"sms"}
    service.set_preferences(
        session, resident, email=None, phone="13800138000", by_email=False, by_sms=False,
        available=sms,
    )  # fmt: skip
    assert deliveries("d") == set()
    assert len(service.inbox(session, resident, 1).messages) == 4
