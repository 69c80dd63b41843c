"""The 提交审批 hand-off and the 差评整改 loop across nodes: the applicant's node (A)
receives the case, the authority's node (B) handles it. The proposal and its return are
B's steps and reach A; the authority's reply to a poor rating reaches the applicant on A
(with its message), the applicant's answer reaches B, whose item reopens or escalates."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from tongban.cases import service as cases
from tongban.cases.models import Case, Rectification
from tongban.notifications.models import Message

from builders import make_officer, make_supervisor

OFFICER_AUTH = "320500-housing_fund"


def loaded(node: Any, number: str) -> Case:
    with node.session() as s:
        case = s.query(Case).filter_by(number=number).one()
        _ = case.events
        return case


def test_the_hand_off_and_the_rating_loop_cross_nodes(tools: Any, fed: dict[str, Any]) -> None:
    a, b = fed["node-a"], fed["node-b"]
    case, resident = tools.submit(a)
    tools.drain(a, b)
    with b.session() as s:
        reviewer = make_officer(s, OFFICER_AUTH, duty="reviewer")
        approver = make_officer(s, OFFICER_AUTH, duty="approver")
        steps = [
            (reviewer, "accept", ""),
            (reviewer, "start_review", ""),
            (reviewer, "submit_for_approval", "材料齐全，建议准予"),
            (approver, "return_to_review", "请核对缴存记录"),
            (reviewer, "submit_for_approval", "已核对，建议准予"),
            (approver, "approve", ""),
            (approver, "issue_result", ""),
            (approver, "deliver", ""),
        ]
        for who, action, comment in steps:
            cases.act(s, s.get(type(who), who.id), case.id, action, comment)
            s.commit()
        supervisor = make_supervisor(s, "320000")
        s.commit()
    tools.drain(a, b)
    mine = loaded(a, case.number)
    assert mine.state == "delivered"
    assert [e.action for e in mine.events if "review" in e.action or "approval" in e.action] == [
        "start_review",
        "submit_for_approval",
        "return_to_review",
        "submit_for_approval",
    ]

    with a.session() as s:
        cases.rate(s, s.get(type(resident), resident.id), case.id, 1, "多次往返")
        s.commit()
    tools.drain(a, b)
    with b.session() as s:
        (item,) = cases.list_rectifications(s, s.get(type(approver), approver.id))
        cases.reply_rectification(s, s.get(type(approver), approver.id), item.id, "已改为一次办")
        s.commit()
    tools.drain(a, b)

    with a.session() as s:  # the applicant's node: the reply, its message, the answer
        who = s.get(type(resident), resident.id)
        copy = s.scalar(select(Case).where(Case.number == case.number))
        assert copy is not None
        loop = cases.rectification_of(s, copy)
        assert loop is not None and loop.state == "replied"
        assert copy.events[-1].comment == "已改为一次办"
        topics = set(s.scalars(select(Message.topic).where(Message.account_id == resident.id)))
        assert "case.rating_reply" in topics
        cases.answer_rectification(s, who, case.id, False, "仍需跑两次")
        s.commit()
    tools.drain(a, b)
    with b.session() as s:
        row = s.scalar(select(Rectification).where(Rectification.case_id == case.id))
        assert row is not None and row.status == "open"
        for n in range(2):  # two more replies answered 未解决: the second escalates
            cases.reply_rectification(s, s.get(type(approver), approver.id), row.id, f"答复{n}")
            s.commit()
            tools.drain(a, b)
            with a.session() as sa:
                cases.answer_rectification(
                    sa, sa.get(type(resident), resident.id), case.id, False, "仍未解决"
                )
                sa.commit()
            tools.drain(a, b)
            s.expire_all()
        row = s.scalar(select(Rectification).where(Rectification.case_id == case.id))
        assert row is not None and row.status == "escalated"
        sup = s.get(type(supervisor), supervisor.id)
        assert [i.id for i in cases.list_rectifications(s, sup)] == [row.id]
    assert loaded(a, case.number).events[-1].action == "rectification_escalated"


def test_a_peer_cannot_answer_for_a_loop_that_is_not_waiting(
    tools: Any, fed: dict[str, Any]
) -> None:
    """An applicant's answer arriving before any reply is refused by B (its machine)."""
    from tongban.cases import messages
    from tongban.exchange import service as exchange

    a, b = fed["node-a"], fed["node-b"]
    case, resident = tools.submit(a)
    tools.drain(a, b)
    with b.session() as s:
        officer = make_officer(s, OFFICER_AUTH)
        for action in ("accept", "start_review", "approve", "issue_result", "deliver"):
            cases.act(s, s.get(type(officer), officer.id), case.id, action, "")
            s.commit()
    tools.drain(a, b)
    with a.session() as s:
        cases.rate(s, s.get(type(resident), resident.id), case.id, 2, "慢")
        s.commit()
    tools.drain(a, b)
    with b.session() as s:
        copy = s.scalar(select(Case).where(Case.number == case.number))
        assert copy is not None
        ev = copy.events[-1]
        forged = {
            "number": copy.number,
            "state": "rated",
            "seq": ev.seq + 1,
            "action": "rectification_accepted",
            "comment": "已解决",
            "event": {
                "id": "00000000-0000-4000-8000-000000000001",
                "seq": ev.seq + 1,
                "action": "rectification_accepted",
                "from_state": "rated",
                "to_state": "rated",
                "actor_name": "居民",
                "actor_role": "resident",
                "comment": "已解决",
                "at": ev.at.isoformat(),
            },
            "case": {
                "state": "rated",
                "handoff": "delivered",
                "result_text": copy.result_text,
                "form_data": copy.form_data,
                "deadline_flag": copy.deadline_flag,
                "accepted_at": copy.accepted_at.isoformat() if copy.accepted_at else None,
                "deadline": copy.deadline.isoformat() if copy.deadline else None,
                "closed_at": copy.closed_at.isoformat() if copy.closed_at else None,
            },
        }
        p = messages.StatusChanged.model_validate_json(json.dumps(forged))
        with pytest.raises(exchange.Refused) as e:
            messages.check_status(s, p, None, copy)  # type: ignore[arg-type]
        assert e.value.reason == "bad-payload" and "不能执行" in e.value.detail
