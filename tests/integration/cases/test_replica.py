"""A case's copies on the kernel's replication, on one node (both databases): every
step goes through the outbox, built when its transaction commits, and applying it here
changes nothing; a 多地联办 sub-task's steps go on to the lead's copy the same way. (The
copies on separate nodes: tests/integration/exchange/test_cross_node*.py.)"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import object_session

from tongban.cases import messages, replica, service
from tongban.cases.models import Case
from tongban.errors import NotFound
from tongban.exchange import service as exchange
from tongban.exchange.models import OutboxMessage
from tongban.exchange.service import dispatch_pending
from tongban.regions import service as regions

from builders import make_case, make_officer, make_resident

OFFICER_AUTH = "320500-housing_fund"


def _sent(session, number, **where):  # type: ignore[no-untyped-def]
    stmt = select(OutboxMessage).filter_by(**where).order_by(OutboxMessage.created_at)
    return [m for m in session.scalars(stmt) if m.payload.get("number") == number]


def test_steps_of_one_transaction_are_each_sent_consistent_and_change_nothing_here(
    session, factory
):
    reviewer = make_officer(session, OFFICER_AUTH, duty="reviewer")
    case = make_case(session)  # forwarded: its receipt is queued
    service.act(session, reviewer, case.id, "accept")
    service.act(session, reviewer, case.id, "start_review")
    assert _sent(session, case.number, type="case.status_changed") == []  # until commit
    session.commit()

    sent = _sent(session, case.number, type="case.status_changed")
    # One per step, to the receiving side, each with the state its own event reached
    # (the case is under review by the time they are built).
    assert [(m.payload["seq"], m.payload["action"], m.payload["state"]) for m in sent] == [
        (2, "forwarded", "submitted"),
        (3, "accept", "accepted"),
        (4, "start_review", "under_review"),
    ]
    assert {(m.source_jurisdiction, m.target_jurisdiction) for m in sent} == {("320000", "340000")}
    for m in sent:
        parsed = messages.StatusChanged.model_validate_json(json.dumps(m.payload))
        assert parsed.case.state == parsed.event.to_state
    assert sent[1].payload["case"]["deadline"] == case.deadline.isoformat()

    version = session.get(Case, case.id).version
    assert dispatch_pending(factory) == 3
    session.expire_all()
    assert all(m.status == "delivered" for m in _sent(session, case.number))
    same = session.get(Case, case.id)
    assert same.version == version and same.event_seq == 4 and same.state == "under_review"


def _joint_case(session):  # type: ignore[no-untyped-def]
    """Received in 上海, led by 合肥 (安徽), with a sub-task at 江苏's authority."""
    return make_case(
        session,
        make_resident(session, city="310000"),
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


def test_a_subtask_s_steps_go_on_to_the_lead_and_change_nothing_on_one_node(session, factory):
    case = _joint_case(session)
    (sub,) = case.subtasks
    assert (case.receiving_jurisdiction, case.competent_jurisdiction) == ("310000", "340000")
    lead = make_officer(session, "340100-housing_fund")
    partner = make_officer(session, _code(sub))
    for action in ("accept", "start_review"):
        service.act(session, lead, case.id, action)
    for action in ("accept", "start_review", "approve"):
        service.act(session, partner, sub.id, action, "同意转出")
    session.commit()
    assert case.state == "approved" and case.events[-1].actor_role == "system"

    relayed = [m for m in _sent(session, sub.number) if m.payload.get("to_lead")]
    assert [m.payload["action"] for m in relayed] == [
        "forwarded",
        "accept",
        "start_review",
        "approve",
    ]
    assert {(m.source_jurisdiction, m.target_jurisdiction) for m in relayed} == {
        ("310000", "340000")
    }
    seq = case.event_seq
    assert dispatch_pending(factory) >= len(relayed)
    session.expire_all()
    assert {m.status for m in session.scalars(select(OutboxMessage))} == {"delivered"}
    parent = session.get(Case, case.id)
    assert parent.event_seq == seq  # decided once, here, when the step was taken
    assert [e.action for e in parent.events].count("approve") == 1


def _code(case: Case) -> str:
    s = object_session(case)
    assert s is not None
    return regions.get_authority(s, case.authority_id).code


def test_a_step_for_a_case_not_here_waits_only_when_sent_on_to_the_lead(session):
    payload = {"number": "3401002099010100001", "seq": 2}
    with pytest.raises(NotFound):
        replica.CASES.receive_change(session, payload)
    with pytest.raises(exchange.OutOfOrder, match="主件尚未送达"):
        replica.CASES.receive_change(session, {**payload, "to_lead": True})
