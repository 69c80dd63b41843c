"""Joint border work orders across two nodes: a report in 青浦 (上海, node A) near 昆山
(苏州, 江苏, node B) is led by 上海 and co-handled by 苏州. Node B keeps a replica the
苏州 co-handler and 江苏's supervisors see; its findings travel to the lead, and every
event of the lead's loop comes back, in order."""

from __future__ import annotations

import types
from typing import Any

import pytest
from sqlalchemy import func, select

from tongban.errors import PermissionDenied
from tongban.exchange.models import InboxMessage
from tongban.regions import service as regions
from tongban.tickets import service as tickets
from tongban.tickets.models import TicketNotice, WorkOrder
from tongban.tickets.service import federation, findings

from builders import (
    make_city_staff,
    make_officer,
    make_photo,
    make_resident,
    make_supervisor,
    make_work_order,
)

#: In 青浦 (上海), about 100 m from 苏州 (江苏): led by 上海, co-handled by 苏州.
BORDER_QINGPU_KUNSHAN = (31.0070, 120.901)
TICKET_TYPES = (federation.MSG_SHARED, federation.MSG_EVENT, federation.MSG_FINDING)


def _report(a: Any) -> tuple[WorkOrder, Any, str]:
    """A resident of 上海 reports a pothole on the border, with a photo, on node A."""
    with a.session() as s:
        resident = make_resident(s, "310000")
        photo = make_photo(s, resident, a.upload_root)
        wo = make_work_order(s, resident, where=BORDER_QINGPU_KUNSHAN, photo_ids=[photo.id])
        assert wo.joint and wo.jurisdiction_code == "310000"
        (party,) = wo.parties
        assert party.jurisdiction_code == "320000" and party.city_code == "320500"
        lead_code = regions.get_authority(s, wo.authority_id).code  # type: ignore[arg-type]
        co_code = regions.get_authority(s, party.authority_id).code
        s.commit()
        return wo, resident, f"{lead_code}|{co_code}"


def _replica(node: Any, number: str) -> WorkOrder | None:
    with node.session() as s:
        wo = s.scalar(select(WorkOrder).where(WorkOrder.number == number))
        if wo is not None:
            _ = (wo.events, wo.parties)
        return wo


def _actions(wo: WorkOrder | None) -> list[tuple[int, str]]:
    assert wo is not None
    return [(e.seq, e.action) for e in wo.events]


def test_a_border_report_on_a_reaches_b_and_findings_and_the_loop_cross(
    tools: Any, fed: dict[str, Any]
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    wo, resident, codes = _report(a)
    lead_code, co_code = codes.split("|")
    (shared,) = [m for m in a.outbox(type=federation.MSG_SHARED) if m.payload["id"] == str(wo.id)]
    assert shared.target_jurisdiction == "320000" and shared.source_jurisdiction == "310000"
    # Minimised: no reporter data travels; photos as metadata only.
    assert "reporter_phone" not in shared.payload and "reporter_name" not in shared.payload
    assert [p["kind"] for p in shared.payload["photos"]] == ["report"]
    tools.drain(a, b)

    copy = _replica(b, wo.number)
    assert copy is not None and copy.replica and copy.id == wo.id
    assert copy.state == "dispatched" and copy.reporter_id is None and copy.reporter_phone is None
    assert copy.due_at is None and copy.lead_due_at is not None  # the worker leaves it alone
    assert _actions(copy) == [(1, "report"), (2, "dispatch")]
    with b.session() as s:
        co_officer = make_officer(s, co_code, duty="reviewer")
        supervisor = make_supervisor(s, "320000")
        dispatcher = make_city_staff(s, "dispatcher", "320500")
        s.commit()
        supervisor_id = supervisor.id
        for viewer in (co_officer, supervisor, dispatcher):
            assert wo.id in [w.id for w in tickets.list_work_orders(s, viewer)]
        # Nobody on B drives the loop of a work order led on A.
        assert tickets.available_actions(co_officer, tickets.get(s, co_officer, wo.id)) == []
        try:
            tickets.act(s, dispatcher, wo.id, "verify")
            raise AssertionError("a dispatcher on B verified a replica")
        except PermissionDenied:
            s.rollback()
        notice = s.scalar(
            select(TicketNotice).where(
                TicketNotice.ticket_id == wo.id,
                TicketNotice.authority_id == co_officer.authority_id,
            )
        )
        assert notice is not None and "协办" in notice.text

        # The 苏州 co-handler's finding goes to the lead.
        tickets.co_note(s, co_officer, wo.id, "昆山一侧路面同样破损，已设置警示")
        s.commit()
    assert _actions(_replica(b, wo.number))[-1] == (2, "dispatch")  # not recorded locally
    tools.drain(a, b)
    lead = _replica(a, wo.number)
    assert lead is not None and not lead.replica
    finding = lead.events[-1]
    assert (finding.seq, finding.action) == (3, "co_note")
    assert finding.comment == "昆山一侧路面同样破损，已设置警示"
    assert "苏州" in finding.actor_name and finding.actor_role == "officer"
    # ... and comes back to B as the lead's event 3.
    assert _actions(_replica(b, wo.number))[-1] == (3, "co_note")

    # The lead's loop on A: accept, start, fix, verify, feedback.
    with a.session() as s:
        officer = make_officer(s, lead_code, duty="reviewer")
        dispatcher_a = make_city_staff(s, "dispatcher", "310000")
        me = s.get(type(resident), resident.id)
        tickets.act(s, officer, wo.id, "accept")
        tickets.act(s, officer, wo.id, "start", "已安排养护队")
        evidence = make_photo(s, officer, a.upload_root)
        tickets.act(s, officer, wo.id, "fix", "已修补", photo_ids=[evidence.id])
        tickets.act(s, dispatcher_a, wo.id, "verify", "现场核查已修复")
        tickets.act(s, me, wo.id, "satisfied")
        s.commit()
    tools.drain(a, b)
    lead, copy = _replica(a, wo.number), _replica(b, wo.number)
    assert lead is not None and copy is not None
    assert _actions(copy) == _actions(lead)
    assert [a_[1] for a_ in _actions(copy)[3:]] == ["accept", "start", "fix", "verify", "satisfied"]
    assert (copy.state, copy.resolution, copy.satisfied) == ("closed", "fixed", True)
    assert copy.closed_at is not None and copy.fixed_at is not None
    with b.session() as s:
        closed = s.scalar(
            select(TicketNotice).where(
                TicketNotice.ticket_id == wo.id, TicketNotice.kind == "closed"
            )
        )
        assert closed is not None and "办结" in closed.text
        # The supervisor of 江苏 sees the outcome.
        sup = s.get(type(supervisor), supervisor_id)
        (seen,) = [w for w in tickets.list_work_orders(s, sup) if w.id == wo.id]
        assert seen.state == "closed"


def test_events_arriving_ahead_of_their_predecessor_wait_and_redelivery_is_idempotent(
    tools: Any, fed: dict[str, Any]
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    wo, _, codes = _report(a)
    tools.drain(a, b)
    with a.session() as s:
        officer = make_officer(s, codes.split("|")[0], duty="reviewer")
        tickets.act(s, officer, wo.id, "accept")
        tickets.act(s, officer, wo.id, "start")
        s.commit()
    first, second = [
        m
        for m in a.outbox(type=federation.MSG_EVENT, status="pending")
        if m.payload["id"] == str(wo.id)
    ]
    assert (first.payload["seq"], second.payload["seq"]) == (3, 4)
    with a.session() as s:  # hold back the first one
        s.get(type(first), first.id).next_attempt_at = first.created_at.replace(year=2999)  # type: ignore[union-attr]
        s.commit()
    a.dispatch()
    held = a.outbox(id=second.id)[0]
    assert held.status == "pending" and "409" in (held.last_error or "")
    assert _replica(b, wo.number).state == "dispatched"  # type: ignore[union-attr]
    with a.session() as s:
        for m in (first, second):
            s.get(type(m), m.id).next_attempt_at = m.created_at  # type: ignore[union-attr]
        s.commit()
    tools.drain(a, b)
    copy = _replica(b, wo.number)
    assert copy is not None and copy.state == "in_progress"
    assert _actions(copy)[2:] == [(3, "accept"), (4, "start")]

    # Redelivery of what B has applied already changes nothing.
    (shared,) = [m for m in a.outbox(type=federation.MSG_SHARED) if m.payload["id"] == str(wo.id)]
    with a.session() as s:  # as if the sender never heard the answers
        for m in (shared, second):
            row = s.get(type(m), m.id)
            assert row is not None
            row.status, row.next_attempt_at = "pending", row.created_at
        s.commit()
    assert a.dispatch() == 2
    with b.session() as s:
        assert s.scalar(select(func.count()).where(WorkOrder.number == wo.number)) == 1
        assert s.scalar(select(func.count()).where(InboxMessage.id == second.id)) == 1
    assert _actions(_replica(b, wo.number)) == _actions(copy)


def test_one_node_serving_both_sides_sends_through_its_outbox_and_changes_nothing(
    session: Any,
) -> None:
    """One code path: on one node the copies' messages still go through the outbox (at
    commit), and their local delivery finds the work order itself, holding every event."""
    from tongban.exchange import service as exchange
    from tongban.exchange.models import OutboxMessage

    wo = make_work_order(session, where=BORDER_QINGPU_KUNSHAN)
    assert wo.joint and not wo.replica
    (party,) = wo.parties
    partner = make_officer(session, regions.get_authority(session, party.authority_id).code)
    tickets.co_note(session, partner, wo.id, "本地联办意见")
    assert wo.events[-1].action == "co_note"  # recorded at once, on the same row

    def sent() -> list[OutboxMessage]:
        q = select(OutboxMessage).where(OutboxMessage.type.in_(TICKET_TYPES))
        return list(session.scalars(q.order_by(OutboxMessage.created_at)))

    assert sent() == []  # built when the transaction commits
    session.commit()
    messages = sent()
    assert [(m.type, m.target_jurisdiction) for m in messages] == [
        (federation.MSG_SHARED, "320000"),
        (federation.MSG_EVENT, "320000"),  # dispatch
        (federation.MSG_EVENT, "320000"),  # co_note
    ]
    shared = messages[0].payload
    assert [e["action"] for e in shared["events"]] == ["report", "dispatch", "co_note"]
    assert [m.payload["seq"] for m in messages[1:]] == [2, 3]

    events, version = _actions(wo), wo.version
    notices = session.scalar(select(func.count()).select_from(TicketNotice))
    for m in messages:
        assert exchange.apply_locally(session, m)  # applied (in the inbox), changing nothing
    session.flush()
    assert _actions(wo) == events and wo.version == version and not wo.replica
    assert session.scalar(select(func.count()).select_from(TicketNotice)) == notices
    assert session.scalar(select(func.count()).where(WorkOrder.number == wo.number)) == 1


def _finding(session: Any, payload: dict[str, Any], source: str) -> None:
    """`payload` as node B (serving 江苏 and 浙江) sends it from `source`, through the
    inbox's checks."""
    from tongban.exchange import service as exchange

    sender = exchange.Sender("node-b", frozenset({"320000", "330000"}), source, "310000")
    exchange.check(session, federation.MSG_FINDING, payload, sender)
    findings.on_finding(session, payload, types.SimpleNamespace(source_jurisdiction=source))


def test_a_finding_from_a_jurisdiction_that_is_not_the_co_handlers_is_refused(
    session: Any,
) -> None:
    from tongban.exchange import service as exchange

    wo = make_work_order(session, where=BORDER_QINGPU_KUNSHAN)
    (party,) = wo.parties
    payload = {
        "id": str(wo.id),
        "number": wo.number,
        "authority_code": regions.get_authority(session, party.authority_id).code,
        "actor_name": "冒名者",
        "comment": "伪造的意见",
    }
    # 浙江's jurisdiction is served by the same node as 苏州's, but the finding is 苏州's.
    with pytest.raises(exchange.Refused) as refused:
        _finding(session, payload, "330000")
    assert refused.value.reason == "not-allowed" and "320000" in refused.value.detail
    # A node that does not serve 江苏 at all.
    with pytest.raises(exchange.Refused) as refused:
        exchange.check(
            session,
            federation.MSG_FINDING,
            payload,
            exchange.Sender("node-c", frozenset({"330000"}), "330000", "310000"),
        )
    assert refused.value.reason == "not-allowed"
    assert [e.action for e in wo.events] == ["report", "dispatch"]
    _finding(session, payload, "320000")
    assert wo.events[-1].action == "co_note" and wo.events[-1].actor_name.startswith("冒名者")
