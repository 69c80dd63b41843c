"""Joint work orders across nodes. A border work order is led by the node serving the
lead authority's jurisdiction; when a co-handling authority (TicketParty) belongs to a
jurisdiction this node does not serve, the co-handler's node keeps a *replica* — a row
of the same `ticket` tables with `replica = True` — kept in step by exchange messages:

- `ticket.shared`  (lead -> co-handler's jurisdiction): a minimised snapshot (no
  reporter data; photos' metadata only) sent with the work order's first event;
- `ticket.event`   (lead -> co-handler's jurisdiction): every later event with its
  sequence number and the fields it moved; a replica appends the next one, ignores
  one it has, and asks for a later delivery (OutOfOrder -> 409, retried) when an
  earlier one is missing;
- `ticket.finding` (co-handler -> lead's jurisdiction): a finding (联办意见) written on
  the replica, recorded by the lead as the co-handler's `co_note` event — which then
  comes back to the replica as a `ticket.event`.

On one node serving both sides nothing here sends anything: `after_record` finds no
co-handler in a jurisdiction served elsewhere.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from tongban.errors import NotFound, PermissionDenied, ValidationFailed
from tongban.exchange import service as exchange
from tongban.files.models import Attachment
from tongban.identity.models import Account
from tongban.kernel import history
from tongban.regions import service as regions
from tongban.tickets import domain
from tongban.tickets.domain import TicketState
from tongban.tickets.models import TicketEvent, TicketParty, WorkOrder
from tongban.tickets.service import messages

MSG_SHARED = "ticket.shared"
MSG_EVENT = "ticket.event"
MSG_FINDING = "ticket.finding"

#: Work-order columns a replica follows, copied as they are on the lead's node.
_TRACKED = (
    "state",
    "resolution",
    "authority_name",
    "deadline_flag",
    "escalation_level",
    "on_time",
    "satisfied",
    "reopen_count",
    "deadline_rule",
)
#: Moments copied too. The lead's `due_at` goes to the replica's `lead_due_at`, and
#: `verified_at` is not copied: this node's deadline worker must leave a replica alone.
_MOMENTS = ("dispatched_at", "accepted_at", "fixed_at", "closed_at")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def foreign_jurisdictions(session: Session, wo: WorkOrder) -> list[str]:
    """The co-handlers' jurisdictions of `wo` that another node serves (in order)."""
    if not wo.joint or wo.replica:
        return []
    out: list[str] = []
    for p in wo.parties:
        if p.jurisdiction_code not in out and not exchange.serves_here(
            session, p.jurisdiction_code
        ):
            out.append(p.jurisdiction_code)
    return out


# --- payloads ---------------------------------------------------------------------------


def event_dict(ev: TicketEvent) -> dict[str, Any]:
    return {
        "id": str(ev.id),
        "seq": ev.seq,
        "action": ev.action,
        "from_state": ev.from_state,
        "to_state": ev.to_state,
        "actor_name": ev.actor_name,
        "actor_role": ev.actor_role,
        "comment": ev.comment,
        "at": ev.at.isoformat(),
    }


def _order_fields(session: Session, wo: WorkOrder) -> dict[str, Any]:
    authority_code = None
    if wo.authority_id is not None:
        authority_code = regions.get_authority(session, wo.authority_id).code
    return {
        **{c: getattr(wo, c) for c in _TRACKED},
        **{c: _iso(getattr(wo, c)) for c in _MOMENTS},
        "due_at": _iso(wo.due_at),
        "authority_code": authority_code,
    }


def _photos(session: Session, wo: WorkOrder) -> list[dict[str, Any]]:
    out = []
    for ph in wo.photos:
        att = session.get(Attachment, ph.attachment_id)
        out.append(
            {
                "kind": ph.kind,
                "filename": att.filename if att else "",
                "content_type": att.content_type if att else "",
                "size": att.size if att else 0,
                "sha256": att.sha256 if att else "",
                "added_at": ph.added_at.isoformat(),
            }
        )
    return out


def snapshot(session: Session, wo: WorkOrder) -> dict[str, Any]:
    """A `ticket.shared` payload: what the co-handler needs, and no reporter data."""
    return {
        "id": str(wo.id),
        "number": wo.number,
        "channel": wo.channel,
        "category_code": wo.category_code,
        "urgency": wo.urgency,
        "description": wo.description,
        "address": wo.address,
        "lat": wo.lat,
        "lon": wo.lon,
        "cell": wo.cell,
        "jurisdiction_code": wo.jurisdiction_code,
        "city_code": wo.city_code,
        "district_code": wo.district_code,
        "routing_note": wo.routing_note,
        "created_at": wo.created_at.isoformat(),
        "order": _order_fields(session, wo),
        "parties": [
            {
                "authority_code": regions.get_authority(session, p.authority_id).code,
                "authority_name": p.authority_name,
                "jurisdiction_code": p.jurisdiction_code,
                "city_code": p.city_code,
                "distance_m": p.distance_m,
            }
            for p in wo.parties
        ],
        # Metadata only: the photos stay on the lead's node (see docs/tickets.md).
        "photos": _photos(session, wo),
        "events": [event_dict(e) for e in wo.events],
    }


def event_payload(session: Session, wo: WorkOrder, ev: TicketEvent) -> dict[str, Any]:
    """A `ticket.event` payload: one new event and the work-order fields it moved."""
    payload: dict[str, Any] = {
        "id": str(wo.id),
        "number": wo.number,
        "seq": ev.seq,
        "event": event_dict(ev),
        "order": _order_fields(session, wo),
    }
    if ev.action in (domain.Action.FIX.value, domain.Action.PARTLY_FIX.value):
        payload["photos"] = _photos(session, wo)
    return payload


_PENDING = "tickets.federation.pending"


def after_record(session: Session, wo: WorkOrder, ev: TicketEvent) -> None:
    """Called for every new event: share a joint work order with the nodes of its
    co-handlers (with its first event), then send them each later one. The use case
    goes on changing the work order after recording its event (a deadline, a time of
    acceptance…), so the payloads are completed when the transaction commits."""
    for target in foreign_jurisdictions(session, wo):
        if ev.seq == 1:
            payload = snapshot(session, wo)
            msg = exchange.send(session, MSG_SHARED, wo.jurisdiction_code, target, payload)
        else:
            payload = event_payload(session, wo, ev)
            msg = exchange.send(session, MSG_EVENT, wo.jurisdiction_code, target, payload)
        session.info.setdefault(_PENDING, []).append((msg, wo, ev))


@event.listens_for(Session, "before_commit")
def _complete_payloads(session: Session) -> None:
    """Rebuild this transaction's ticket messages from the work orders as they stand at
    commit: a snapshot with every event so far (later `ticket.event`s it already holds
    are then ignored), an event with the fields as the use case left them."""
    pending = session.info.pop(_PENDING, None)
    for msg, wo, ev in pending or ():
        if msg not in session or wo not in session:
            continue  # rolled back with a savepoint
        if msg.type == MSG_SHARED:
            msg.payload = snapshot(session, wo)
        else:
            msg.payload = event_payload(session, wo, ev)


@event.listens_for(Session, "after_rollback")
def _forget_payloads(session: Session) -> None:
    session.info.pop(_PENDING, None)


# --- the replica ------------------------------------------------------------------------


def _event(wo: WorkOrder, ev: dict[str, Any]) -> TicketEvent:
    return TicketEvent(
        id=uuid.UUID(ev["id"]),
        ticket_id=wo.id,
        seq=int(ev["seq"]),
        action=ev["action"],
        from_state=ev["from_state"],
        to_state=ev["to_state"],
        actor_id=None,
        actor_name=ev["actor_name"][:80],
        actor_role=ev["actor_role"][:20],
        comment=ev["comment"],
        at=datetime.fromisoformat(ev["at"]),
    )


def _follow(session: Session, wo: WorkOrder, fields: dict[str, Any]) -> None:
    for c in _TRACKED:
        setattr(wo, c, fields[c])
    for c in _MOMENTS:
        setattr(wo, c, _dt(fields[c]))
    wo.lead_due_at = _dt(fields["due_at"])
    if fields.get("authority_code"):
        lead = regions.authority_by_code(session, fields["authority_code"])
        wo.authority_id = lead.id


def _tell_co_handlers(session: Session, wo: WorkOrder, kind: str, text: str) -> None:
    from tongban.tickets.service import common

    for p in wo.parties:
        if exchange.serves_here(session, p.jurisdiction_code):
            common.notify(session, wo, kind, text, authority_id=p.authority_id)


def create_replica(session: Session, p: dict[str, Any]) -> WorkOrder:
    """This node's copy of a joint work order led on another node, from its snapshot."""
    existing = session.get(WorkOrder, uuid.UUID(p["id"]))
    if existing is not None:
        return existing  # on one node, or shared twice: nothing to add
    fields = p["order"]
    wo = WorkOrder(
        id=uuid.UUID(p["id"]),
        number=p["number"],
        channel=p["channel"],
        category_code=p["category_code"],
        urgency=p["urgency"],
        description=p["description"],
        address=p["address"],
        lat=p["lat"],
        lon=p["lon"],
        cell=p["cell"],
        jurisdiction_code=p["jurisdiction_code"],
        city_code=p["city_code"],
        district_code=p["district_code"],
        routing_note=p["routing_note"][:300],
        joint=True,
        replica=True,
        # The reporter stays on the lead's node (minimised).
        reporter_name="",
        created_at=datetime.fromisoformat(p["created_at"]),
    )
    _follow(session, wo, fields)
    session.add(wo)
    session.flush()
    for party in p["parties"]:
        authority = regions.authority_by_code(session, party["authority_code"])
        wo.parties.append(
            TicketParty(
                ticket_id=wo.id,
                authority_id=authority.id,
                authority_name=party["authority_name"],
                jurisdiction_code=party["jurisdiction_code"],
                city_code=party["city_code"],
                distance_m=float(party["distance_m"]),
            )
        )
    for ev in p["events"]:
        history.adopt(wo, _event(wo, ev))
    wo.updated_at = wo.events[-1].at if wo.events else wo.created_at
    session.flush()
    _tell_co_handlers(
        session,
        wo,
        "dispatched",
        f"跨界联办工单 {wo.number}（协办，主办：{wo.authority_name}）",
    )
    return wo


def apply_event(session: Session, wo: WorkOrder, p: dict[str, Any]) -> bool:
    """Bring a replica up to an event of its lead; False when it has it already."""
    seq, have = int(p["seq"]), wo.event_seq or 0
    if seq <= have:
        return False
    if seq > have + 1:
        raise exchange.OutOfOrder(f"工单 {wo.number} 尚缺第 {have + 1} 条记录，稍后重试")
    was_terminal = TicketState(wo.state) in domain.TERMINAL
    ev = _event(wo, p["event"])
    history.adopt(wo, ev)
    wo.updated_at = ev.at
    _follow(session, wo, p["order"])
    session.flush()
    if not was_terminal and TicketState(wo.state) in domain.TERMINAL:
        _tell_co_handlers(
            session, wo, "closed", f"跨界联办工单 {wo.number} 已由{wo.authority_name}办结"
        )
    return True


def send_finding(session: Session, actor: Account, wo: WorkOrder, comment: str) -> None:
    """A co-handling officer's finding on a replica: sent to the lead's node, which
    records it (it comes back here as that work order's next event)."""
    party = next((p for p in wo.parties if p.authority_id == actor.authority_id), None)
    if party is None:
        raise PermissionDenied("只有协办部门可以填写联办意见")
    exchange.send(
        session,
        MSG_FINDING,
        party.jurisdiction_code,
        wo.jurisdiction_code,
        {
            "id": str(wo.id),
            "number": wo.number,
            "authority_code": regions.get_authority(session, party.authority_id).code,
            "actor_name": actor.display_name,
            "comment": comment,
        },
    )
    from tongban.tickets.service import common

    common.notify(
        session,
        wo,
        "finding_sent",
        f"联办意见已发送至主办方（工单 {wo.number}），主办方记录后同步显示",
        authority_id=party.authority_id,
    )


# --- handlers ---------------------------------------------------------------------------


def _source(msg: Any) -> str:
    return str(getattr(msg, "source_jurisdiction", ""))


def _replica(session: Session, p: dict[str, Any]) -> WorkOrder | None:
    return session.get(WorkOrder, uuid.UUID(p["id"]))


@exchange.handler(MSG_SHARED, schema=messages.Shared, authorise=messages.authorise_shared)
def on_shared(session: Session, payload: dict[str, Any], msg: Any) -> None:
    """Create the replica of a joint work order led on the sender's node."""
    if _source(msg) != payload["jurisdiction_code"]:
        raise PermissionDenied("只有主办地可以共享工单", type="not-the-lead")
    create_replica(session, payload)


@exchange.handler(MSG_EVENT, schema=messages.Event, authorise=messages.authorise_event)
def on_event(session: Session, payload: dict[str, Any], msg: Any) -> None:
    """Append the lead's next event to the replica (later, if an earlier one is missing)."""
    wo = _replica(session, payload)
    if wo is None:
        raise exchange.OutOfOrder(f"工单 {payload['number']} 尚未共享至本节点，稍后重试")
    if not wo.replica:
        return  # this node leads it: the event is its own
    if _source(msg) != wo.jurisdiction_code:
        raise PermissionDenied("只有主办地可以更新工单", type="not-the-lead")
    apply_event(session, wo, payload)


@exchange.handler(MSG_FINDING, schema=messages.Finding, authorise=messages.authorise_finding)
def on_finding(session: Session, payload: dict[str, Any], msg: Any) -> None:
    """Record a co-handler's finding on the lead's work order (as its `co_note`)."""
    from tongban.tickets.service import common

    wo = _replica(session, payload)
    if wo is None or wo.replica:
        raise NotFound(f"工单 {payload['number']} 不由本节点主办", type="unknown-work-order")
    authority = regions.authority_by_code(session, payload["authority_code"])
    party = next((p for p in wo.parties if p.authority_id == authority.id), None)
    if party is None or party.jurisdiction_code != _source(msg):
        raise PermissionDenied("发送方不是该工单的协办部门", type="not-a-party")
    comment = str(payload["comment"]).strip()
    if not comment:
        raise ValidationFailed("联办意见为空", errors=[{"field": "comment", "message": "必填"}])
    name = f"{payload['actor_name']}（{party.authority_name}）"[:80]
    common.record(
        session,
        wo,
        "co_note",
        wo.state,
        wo.state,
        None,
        comment,
        actor_name=name,
        actor_role="officer",
    )


__all__ = [
    "MSG_EVENT",
    "MSG_FINDING",
    "MSG_SHARED",
    "after_record",
    "apply_event",
    "create_replica",
    "send_finding",
    "snapshot",
]


def replicas(session: Session) -> list[WorkOrder]:
    """Replicas held on this node (operators' view)."""
    return list(session.scalars(select(WorkOrder).where(WorkOrder.replica.is_(True))))
