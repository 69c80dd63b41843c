"""A case received on node A (安徽) for a 江苏 authority is forwarded to node B over signed
HTTP, handled there, and every status change flows back to A's copy — and the
applicant's own steps (补正, 评价) flow from A to B."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from tongban.cases import service as cases
from tongban.cases.attachments import blob_path
from tongban.cases.models import Case, Rating, Rectification
from tongban.exchange.models import InboxMessage

from builders import make_officer, upload

OFFICER_AUTH = "320500-housing_fund"


def test_a_case_crosses_nodes_and_its_statuses_come_back(tools: Any, fed: dict[str, Any]) -> None:
    a, b = fed["node-a"], fed["node-b"]
    case, resident = tools.submit(a)
    assert tools.stored_case(b, case.number) is None
    tools.drain(a, b)

    copy = tools.stored_case(b, case.number)
    assert copy is not None and copy.id == case.id and copy.handoff == "delivered"
    assert copy.applicant_id is None and copy.applicant_name == resident.display_name
    assert [e.action for e in copy.events] == ["submit", "forwarded"]
    # The material arrived and was stored by its hash on B.
    (att,) = copy.attachments
    assert blob_path(b.settings.upload_dir, att.sha256).exists()
    # A's copy learnt that the case was forwarded.
    mine = tools.stored_case(a, case.number)
    assert mine is not None and mine.handoff == "delivered"
    assert [e.action for e in mine.events] == ["submit", "forwarded"]

    with b.session() as s:
        reviewer = make_officer(s, OFFICER_AUTH, duty="reviewer")
        approver = make_officer(s, OFFICER_AUTH)
        assert case.id in {c.id for c in cases.list_cases(s, reviewer)}
        cases.act(s, reviewer, case.id, "request_correction", "请补充材料")
        s.commit()
    tools.drain(a, b)
    assert tools.stored_case(a, case.number).state == "correction_requested"  # type: ignore[union-attr]

    with a.session() as s:
        who = s.get(type(resident), resident.id)
        att2 = upload(s, who, tmp=a.upload_root)
        cases.resubmit(s, who, case.id, attachment_ids=[att2.id], comment="已补正")
        s.commit()
    tools.drain(a, b)
    copy = tools.stored_case(b, case.number)
    assert copy is not None and copy.state == "submitted" and len(copy.attachments) == 2

    with b.session() as s:
        for actor, action in (
            (reviewer, "accept"),
            (reviewer, "start_review"),
            (approver, "approve"),
            (approver, "issue_result"),
            (approver, "deliver"),
        ):
            cases.act(s, s.get(type(actor), actor.id), case.id, action)
            s.commit()
    tools.drain(a, b)
    mine = tools.stored_case(a, case.number)
    assert mine is not None and mine.state == "delivered"
    assert mine.accepted_at is not None and mine.deadline is not None
    assert mine.result_text == "准予办理" and mine.closed_at is not None

    with a.session() as s:
        cases.rate(s, s.get(type(resident), resident.id), case.id, 2, "等待太久")
        s.commit()
    tools.drain(a, b)
    with b.session() as s:
        copy = s.get(Case, case.id)
        assert copy is not None and copy.state == "rated"
        assert s.scalar(select(Rating.score).where(Rating.case_id == case.id)) == 2
        assert s.scalar(select(Rectification.reason).where(Rectification.case_id == case.id))
        b_events = [(e.id, e.seq, e.action) for e in copy.events]
    with a.session() as s:
        a_events = [(e.id, e.seq, e.action) for e in s.get(Case, case.id).events]  # type: ignore[union-attr]
    # Both copies hold the same history, event for event.
    assert a_events == b_events and len(a_events) == 10


def test_redelivery_is_idempotent(tools: Any, fed: dict[str, Any]) -> None:
    a, b = fed["node-a"], fed["node-b"]
    case, _ = tools.submit(a)
    tools.drain(a, b)
    (sent,) = [m for m in a.outbox(type="case.forwarded") if m.payload["number"] == case.number]
    with a.session() as s:  # as if the sender never heard the answer
        row = s.get(type(sent), sent.id)
        assert row is not None
        row.status, row.next_attempt_at = "pending", row.created_at
        s.commit()
    assert a.dispatch() == 1
    with b.session() as s:
        assert s.scalar(select(func.count()).where(Case.number == case.number)) == 1
        assert s.scalar(select(func.count()).where(InboxMessage.id == sent.id)) == 1
        assert s.get(InboxMessage, sent.id).source_node == "node-a"  # type: ignore[union-attr]
    copy = tools.stored_case(b, case.number)
    assert copy is not None and len(copy.events) == 2


def test_a_status_change_ahead_of_its_predecessor_waits_for_it(
    tools: Any, fed: dict[str, Any]
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    case, _ = tools.submit(a)
    tools.drain(a, b)
    with b.session() as s:
        officer = make_officer(s, OFFICER_AUTH, duty="reviewer")
        cases.act(s, officer, case.id, "accept")
        cases.act(s, officer, case.id, "start_review")
        s.commit()
    first, second = [
        m
        for m in b.outbox(type="case.status_changed", status="pending")
        if m.payload["number"] == case.number
    ]
    with b.session() as s:  # hold back the first one
        s.get(type(first), first.id).next_attempt_at = first.created_at.replace(year=2999)  # type: ignore[union-attr]
        s.commit()
    b.dispatch()
    held = b.outbox(id=second.id)[0]
    assert held.status == "pending" and "409" in (held.last_error or "")
    assert tools.stored_case(a, case.number).state == "submitted"  # type: ignore[union-attr]
    with b.session() as s:
        for m in (first, second):
            s.get(type(m), m.id).next_attempt_at = m.created_at  # type: ignore[union-attr]
        s.commit()
    tools.drain(a, b)
    assert tools.stored_case(a, case.number).state == "under_review"  # type: ignore[union-attr]
