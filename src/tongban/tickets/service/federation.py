"""Joint work orders across nodes, on the kernel's replication (`kernel.replication`).

A border work order is led by the node serving the lead authority's jurisdiction; every
co-handling authority (TicketParty) of another jurisdiction gets a *replica* on the node
serving that jurisdiction — a row of the same `ticket` tables with `replica = True`. The
work order declares once, as `WORK_ORDERS`, how its copy is made and kept in step; the
kernel does the rest, as for cases:

- `ticket.shared`  (lead -> co-handler's jurisdiction): the snapshot (no reporter data;
  photos' metadata only; every event so far) queued with the work order's first event;
- `ticket.event`   (lead -> co-handler's jurisdiction): each later event with its
  sequence number and the fields it moved; the kernel appends the next one, ignores one
  the replica holds, and asks for a later delivery (OutOfOrder -> 409, retried) when an
  earlier one is missing;
- `ticket.finding` (co-handler -> lead's jurisdiction): a finding (联办意见) written on
  the replica, recorded by the lead as the co-handler's `co_note` event — which then
  comes back to the replica as a `ticket.event`. A plain message, not replication.

Both replication messages are built when the transaction commits, from the work order
as the use case left it, and always go through the outbox — also when this node serves
the co-handler's jurisdiction: the local delivery then finds the work order itself,
holding every event, and changes nothing (one code path on one node and on many).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.exchange import service as exchange
from tongban.files.models import Attachment
from tongban.kernel import history, replication
from tongban.regions import service as regions
from tongban.tickets import domain
from tongban.tickets.domain import TicketState
from tongban.tickets.models import TicketParty, WorkOrder
from tongban.tickets.service import common, messages

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
#: Events whose change carries the photos' metadata (the evidence of a fix).
_WITH_PHOTOS = frozenset({domain.Action.FIX.value, domain.Action.PARTLY_FIX.value})


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def co_handler_jurisdictions(wo: WorkOrder) -> list[str]:
    """The jurisdictions, other than the lead's own, of `wo`'s co-handlers (in order):
    where its copies live, whichever node serves them. None for a replica (its copies
    are the lead's to keep)."""
    if not wo.joint or wo.replica:
        return []
    lead = wo.jurisdiction_code
    return list(
        dict.fromkeys(p.jurisdiction_code for p in wo.parties if p.jurisdiction_code != lead)
    )


# --- what travels -----------------------------------------------------------------------


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
    """A `ticket.shared` payload but its events (the kernel adds them): what the
    co-handler needs, and no reporter data."""
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
    }


def change(session: Session, wo: WorkOrder, ev: history.EventRow) -> dict[str, Any]:
    """A `ticket.event` payload but its `seq` and `event` (the kernel adds them): the
    work-order fields as they stand, and the photos' metadata after a fix."""
    payload: dict[str, Any] = {
        "id": str(wo.id),
        "number": wo.number,
        "order": _order_fields(session, wo),
    }
    if ev.action in _WITH_PHOTOS:
        payload["photos"] = _photos(session, wo)
    return payload


# --- the replica ------------------------------------------------------------------------


def find(session: Session, p: Mapping[str, Any]) -> WorkOrder | None:
    return session.get(WorkOrder, uuid.UUID(str(p["id"])))


def _follow_order(session: Session, wo: WorkOrder, fields: Mapping[str, Any]) -> None:
    for c in _TRACKED:
        setattr(wo, c, fields[c])
    for c in _MOMENTS:
        setattr(wo, c, _dt(fields[c]))
    wo.lead_due_at = _dt(fields["due_at"])
    if fields.get("authority_code"):
        lead = regions.authority_by_code(session, fields["authority_code"])
        wo.authority_id = lead.id


def _create(session: Session, p: Mapping[str, Any]) -> WorkOrder:
    """This node's replica of a joint work order led on another node, from its snapshot,
    with its parties (the kernel adopts the events)."""
    events = p.get("events") or ()
    created_at = datetime.fromisoformat(p["created_at"])
    wo = WorkOrder(
        id=uuid.UUID(str(p["id"])),
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
        created_at=created_at,
        updated_at=max((datetime.fromisoformat(e["at"]) for e in events), default=created_at),
    )
    _follow_order(session, wo, p["order"])
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
    return wo


def _follow(session: Session, wo: WorkOrder, p: Mapping[str, Any]) -> None:
    """The replica takes the lead's fields after the change's event was adopted."""
    _follow_order(session, wo, p["order"])
    wo.updated_at = datetime.fromisoformat(p["event"]["at"])


WORK_ORDERS: replication.Copies[WorkOrder] = replication.Copies(
    noun="工单",
    snapshot_type=MSG_SHARED,
    snapshot_schema=messages.Shared,
    change_type=MSG_EVENT,
    change_schema=messages.Event,
    find=find,
    create=_create,
    follow=_follow,
    snapshot=snapshot,
    change=change,
    shared_by=lambda p: p.jurisdiction_code,  # the lead's jurisdiction
    changed_by=lambda wo, _p: wo.jurisdiction_code,
    label=lambda p: str(p["number"]),
    check_snapshot=messages.check_shared,
    check_change=messages.check_event,
)


def after_record(session: Session, wo: WorkOrder, ev: history.EventRow) -> None:
    """Called for every new event: a joint work order's first event shares it with its
    co-handlers' jurisdictions, each later one is sent to them — when the transaction
    commits, from the work order as the use case left it."""
    replication.share(
        session,
        WORK_ORDERS,
        wo,
        None if ev.seq == 1 else ev,
        wo.jurisdiction_code,
        co_handler_jurisdictions(wo),
    )


def _tell_co_handlers(session: Session, wo: WorkOrder, kind: str, text: str) -> None:
    for p in wo.parties:
        if exchange.serves_here(session, p.jurisdiction_code):
            common.notify(session, wo, kind, text, authority_id=p.authority_id)


def _on_shared(
    session: Session, wo: WorkOrder, created: bool, payload: Mapping[str, Any], msg: Any
) -> None:
    """A new replica: its co-handling authorities here are told."""
    if created:
        _tell_co_handlers(
            session,
            wo,
            "dispatched",
            f"跨界联办工单 {wo.number}（协办，主办：{wo.authority_name}）",
        )


def _on_event(session: Session, wo: WorkOrder, payload: Mapping[str, Any], msg: Any) -> None:
    """A replica's event applied: when it closed the work order, the co-handlers are told."""
    ev = payload["event"]
    became_terminal = TicketState(ev["to_state"]) in domain.TERMINAL and (
        ev["from_state"] is None or TicketState(ev["from_state"]) not in domain.TERMINAL
    )
    if became_terminal:
        _tell_co_handlers(
            session, wo, "closed", f"跨界联办工单 {wo.number} 已由{wo.authority_name}办结"
        )


replication.register(WORK_ORDERS, on_snapshot=_on_shared, on_change=_on_event)


def replicas(session: Session) -> list[WorkOrder]:
    """Replicas held on this node (operators' view)."""
    return list(session.scalars(select(WorkOrder).where(WorkOrder.replica.is_(True))))


__all__ = [
    "MSG_EVENT",
    "MSG_FINDING",
    "MSG_SHARED",
    "WORK_ORDERS",
    "after_record",
    "co_handler_jurisdictions",
    "replicas",
    "snapshot",
]
