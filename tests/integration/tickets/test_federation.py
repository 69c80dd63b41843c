"""A joint work order's copy on the kernel's replication (service/federation.py), on one
database: the messages a lead's node (node A, serving 上海 310000) sends about a border
work order are received here through the inbox's real path (schema, the sender's right,
then the handler) as if this were the co-handler's node. The payloads are this node's
own, given another id and number, so that the copy is a new row beside the original."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tongban.exchange import service as exchange
from tongban.exchange.federation import Node
from tongban.exchange.models import InboxMessage
from tongban.exchange.transport import Envelope
from tongban.regions import service as regions
from tongban.tickets import service as tickets
from tongban.tickets.models import TicketEvent, TicketNotice, WorkOrder
from tongban.tickets.service import federation
from tongban.tickets.service.federation import WORK_ORDERS

from builders import make_city_staff, make_officer, make_photo, make_resident, make_work_order

#: In 青浦 (上海), about 100 m from 苏州 (江苏): led by 上海, co-handled by 苏州.
BORDER = (31.0070, 120.901)
NODE_A = Node("node-a", "上海节点", ("310000",), "http://node-a.test")


def _receive(
    session: Session,
    msg_type: str,
    payload: dict[str, Any],
    *,
    node: Node = NODE_A,
    source: str = "310000",
    target: str = "320000",
    version: int = 1,
) -> bool:
    env = Envelope(
        id=uuid.uuid4(),
        type=msg_type,
        source_node=node.id,
        source_jurisdiction=source,
        target_jurisdiction=target,
        created_at=datetime.now(UTC).isoformat(),
        payload=payload,
        version=version,
    )
    return exchange.receive(session, env, node)


class Elsewhere:
    """Rewrites this node's payloads of a work order as those of a work order led on
    another node: another id, another number, other event ids (kept per event)."""

    def __init__(self, wo: WorkOrder) -> None:
        self.id, self.number = str(uuid.uuid4()), "GX" + wo.number[2:]
        self.events: dict[str, str] = {}

    def _event(self, ev: dict[str, Any]) -> dict[str, Any]:
        return {**ev, "id": self.events.setdefault(ev["id"], str(uuid.uuid4()))}

    def snapshot(self, session: Session, wo: WorkOrder) -> dict[str, Any]:
        p = WORK_ORDERS.snapshot_payload(session, wo)
        return {
            **p,
            "id": self.id,
            "number": self.number,
            "events": [self._event(e) for e in p["events"]],
        }

    def change(self, session: Session, wo: WorkOrder, ev: TicketEvent) -> dict[str, Any]:
        p = WORK_ORDERS.change_payload(session, wo, ev, None)
        return {**p, "id": self.id, "number": self.number, "event": self._event(p["event"])}


def _lead(session: Session) -> tuple[WorkOrder, Any, str]:
    """A border work order led here by 上海 with 苏州 co-handling, and the lead
    authority's code and the co-handler's authority id."""
    resident = make_resident(session, "310000")
    wo = make_work_order(session, resident, where=BORDER)
    assert wo.joint and wo.jurisdiction_code == "310000"
    (party,) = wo.parties
    assert party.jurisdiction_code == "320000"
    lead_code = regions.get_authority(session, wo.authority_id).code  # type: ignore[arg-type]
    return wo, party.authority_id, lead_code


def _notices(session: Session, ticket_id: uuid.UUID, kind: str) -> list[TicketNotice]:
    q = select(TicketNotice).where(TicketNotice.ticket_id == ticket_id, TicketNotice.kind == kind)
    return list(session.scalars(q))


def _inbox(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(InboxMessage)) or 0


def test_a_snapshot_creates_the_replica_once_and_changes_follow_in_order(
    session: Session, tmp_path: Any
):
    wo, co_authority, lead_code = _lead(session)
    there = Elsewhere(wo)
    assert _receive(session, federation.MSG_SHARED, there.snapshot(session, wo))
    replica = session.get(WorkOrder, uuid.UUID(there.id))
    assert replica is not None and replica.replica and replica.number == there.number
    assert [(e.seq, e.action) for e in replica.events] == [(1, "report"), (2, "dispatch")]
    assert all(e.actor_id is None for e in replica.events)
    assert replica.reporter_id is None and replica.reporter_phone is None  # minimised
    assert replica.due_at is None and replica.lead_due_at == wo.due_at
    assert replica.authority_id == wo.authority_id and replica.state == "dispatched"
    assert replica.updated_at == replica.events[-1].at
    assert [p.authority_id for p in replica.parties] == [co_authority]
    (told,) = _notices(session, replica.id, "dispatched")
    assert told.authority_id == co_authority and "协办" in told.text

    # Shared again (a redelivery under another message id): nothing is added.
    assert _receive(session, federation.MSG_SHARED, there.snapshot(session, wo))
    assert len(replica.events) == 2 and len(_notices(session, replica.id, "dispatched")) == 1

    officer = make_officer(session, lead_code, duty="reviewer")
    tickets.act(session, officer, wo.id, "accept")
    accept = there.change(session, wo, wo.events[-1])
    tickets.act(session, officer, wo.id, "start", "已安排")
    start = there.change(session, wo, wo.events[-1])
    with pytest.raises(exchange.OutOfOrder, match="尚缺第 3 条"):
        _receive(session, federation.MSG_EVENT, start)
    assert replica.event_seq == 2 and replica.state == "dispatched"
    assert _receive(session, federation.MSG_EVENT, accept)
    assert _receive(session, federation.MSG_EVENT, start)
    assert _receive(session, federation.MSG_EVENT, accept)  # held already: nothing changes
    assert [e.action for e in replica.events][2:] == ["accept", "start"]
    assert replica.state == "in_progress" and replica.accepted_at == wo.accepted_at
    assert replica.updated_at == replica.events[-1].at
    assert _notices(session, replica.id, "closed") == []

    # The fix carries the photos' metadata; the close tells the co-handlers.
    evidence = make_photo(session, officer, tmp_path)
    tickets.act(session, officer, wo.id, "fix", "已修补", photo_ids=[evidence.id])
    fix = there.change(session, wo, wo.events[-1])
    assert [p["kind"] for p in fix["photos"]] == ["evidence"]
    dispatcher = make_city_staff(session, "dispatcher", "310000")
    tickets.act(session, dispatcher, wo.id, "verify", "已核查")
    verify = there.change(session, wo, wo.events[-1])
    assert "photos" not in verify and "photos" not in accept
    reporter = session.get(type(officer), wo.reporter_id)
    tickets.act(session, reporter, wo.id, "satisfied")
    satisfied = there.change(session, wo, wo.events[-1])
    for p in (fix, verify):
        _receive(session, federation.MSG_EVENT, p)
    assert _notices(session, replica.id, "closed") == []
    _receive(session, federation.MSG_EVENT, satisfied)
    assert (replica.state, replica.satisfied) == ("closed", True)
    (closed,) = _notices(session, replica.id, "closed")
    assert closed.authority_id == co_authority and "办结" in closed.text


def test_a_change_before_its_snapshot_waits(session: Session):
    wo, _, lead_code = _lead(session)
    there = Elsewhere(wo)
    tickets.act(session, make_officer(session, lead_code, duty="reviewer"), wo.id, "accept")
    with pytest.raises(exchange.OutOfOrder, match="尚未共享"):
        _receive(session, federation.MSG_EVENT, there.change(session, wo, wo.events[-1]))


def _refused(session: Session, msg_type: str, payload: dict[str, Any], **kw: Any) -> Any:
    before = (_inbox(session), session.scalar(select(func.count()).select_from(WorkOrder)))
    with pytest.raises(exchange.Refused) as refused:
        _receive(session, msg_type, payload, **kw)
    after = (_inbox(session), session.scalar(select(func.count()).select_from(WorkOrder)))
    assert after == before  # nothing written
    return refused.value


def test_only_the_leads_node_shares_a_work_order_with_a_co_handlers_jurisdiction(
    session: Session,
):
    wo, _, _ = _lead(session)
    there = Elsewhere(wo)
    snap = there.snapshot(session, wo)
    node_b = Node("node-b", "江苏节点", ("320000", "330000"), "http://node-b.test")
    # A node that does not serve the lead's jurisdiction.
    r = _refused(session, federation.MSG_SHARED, snap, node=node_b, source="320000")
    assert r.reason == "not-allowed" and "310000" in r.detail
    # Another jurisdiction the sender serves is named as the source.
    both = Node("node-ab", "两地节点", ("310000", "340000"), "http://node-ab.test")
    r = _refused(session, federation.MSG_SHARED, snap, node=both, source="340000")
    assert r.reason == "not-allowed"
    # Sent to a jurisdiction without a co-handler.
    r = _refused(session, federation.MSG_SHARED, snap, target="330000")
    assert r.reason == "not-allowed" and "协办部门" in r.detail
    # A work order led here by 上海 cannot be taken over by a snapshot from 安徽.
    anhui = Node("node-c", "安徽节点", ("340000",), "http://node-c.test")
    hijack = {**WORK_ORDERS.snapshot_payload(session, wo), "jurisdiction_code": "340000"}
    r = _refused(session, federation.MSG_SHARED, hijack, node=anhui, source="340000")
    assert r.reason == "not-allowed" and "其他辖区" in r.detail
    # A state outside the machine; a schema version this node does not accept.
    bad = copy.deepcopy(snap)
    bad["events"][0]["to_state"] = "deleted"
    assert _refused(session, federation.MSG_SHARED, bad).reason == "bad-payload"
    r = _refused(session, federation.MSG_SHARED, snap, version=2)
    assert r.reason == "unknown-version"
    assert session.get(WorkOrder, uuid.UUID(there.id)) is None


def test_only_the_leads_node_moves_a_replica_and_nobody_else_moves_a_lead(session: Session):
    wo, _, lead_code = _lead(session)
    there = Elsewhere(wo)
    _receive(session, federation.MSG_SHARED, there.snapshot(session, wo))
    tickets.act(session, make_officer(session, lead_code, duty="reviewer"), wo.id, "accept")
    accept = there.change(session, wo, wo.events[-1])
    node_b = Node("node-b", "江苏节点", ("320000", "330000"), "http://node-b.test")
    r = _refused(session, federation.MSG_EVENT, accept, node=node_b, source="320000")
    assert r.reason == "not-allowed" and "310000" in r.detail
    r = _refused(session, federation.MSG_EVENT, {**accept, "number": "GX000000000000000000"})
    assert r.reason == "not-allowed" and "编号" in r.detail
    replica = session.get(WorkOrder, uuid.UUID(there.id))
    assert replica is not None and replica.event_seq == 2

    # Another node serving 上海 too cannot append to the work order this node leads.
    seq = wo.event_seq
    forged = WORK_ORDERS.change_payload(session, wo, wo.events[-1], None)
    forged["seq"] = forged["event"]["seq"] = seq + 1
    forged["event"]["id"] = str(uuid.uuid4())
    r = _refused(session, federation.MSG_EVENT, forged)
    assert r.reason == "not-allowed" and "本节点主办" in r.detail
    assert wo.event_seq == seq
