"""The joint work-order messages as a receiving node accepts them (see federation.py):
typed payloads, and who may send them for which work order.

- `ticket.shared` and `ticket.event` come from the node serving the lead's
  jurisdiction (the work order's `jurisdiction_code`), to a co-handler's jurisdiction;
- `ticket.finding` comes from the node serving the jurisdiction of the co-handling
  party it names, to the lead.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field, StringConstraints
from sqlalchemy.orm import Session

from tongban.errors import NotFound
from tongban.exchange import schema as s
from tongban.exchange import service as exchange
from tongban.regions import service as regions
from tongban.tickets.domain import Resolution, TicketState
from tongban.tickets.models import WorkOrder

TicketNumber = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,24}$")]
Str = Annotated[str, StringConstraints(max_length=200)]
ActionName = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,30}$")]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]


class TicketEventIn(s.Payload):
    id: s.Uuid
    seq: s.Seq
    action: ActionName
    from_state: TicketState | None
    to_state: TicketState
    actor_name: Str
    actor_role: Str
    comment: s.LongText
    at: s.Instant


class OrderFields(s.Payload):
    state: TicketState
    resolution: Resolution | None
    authority_name: Str
    deadline_flag: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,12}$")]
    escalation_level: Annotated[int, Field(ge=0, le=100)]
    on_time: bool | None
    satisfied: bool | None
    reopen_count: Annotated[int, Field(ge=0, le=1000)]
    deadline_rule: Annotated[str, StringConstraints(max_length=40)]
    dispatched_at: s.Instant | None
    accepted_at: s.Instant | None
    fixed_at: s.Instant | None
    closed_at: s.Instant | None
    due_at: s.Instant | None
    authority_code: s.Code | None


class PhotoIn(s.Payload):
    """Metadata only: the photos stay on the lead's node."""

    kind: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,20}$")]
    filename: Annotated[str, StringConstraints(max_length=200)]
    content_type: Annotated[str, StringConstraints(max_length=80)]
    size: s.Count
    sha256: s.Sha256 | Annotated[str, StringConstraints(max_length=0)]
    added_at: s.Instant


class PartyIn(s.Payload):
    authority_code: s.Code
    authority_name: Str
    jurisdiction_code: s.RegionCode
    city_code: s.RegionCode
    distance_m: Annotated[float, Field(ge=0, le=1e8)]


class Shared(s.Payload):
    id: s.Uuid
    number: TicketNumber
    channel: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,10}$")]
    category_code: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    urgency: Annotated[str, StringConstraints(min_length=1, max_length=20)]
    description: s.LongText
    address: Str
    lat: Latitude | None
    lon: Longitude | None
    cell: Annotated[str, StringConstraints(max_length=20)] | None
    jurisdiction_code: s.RegionCode
    city_code: s.RegionCode
    district_code: s.RegionCode | None
    routing_note: s.ShortText
    created_at: s.Instant
    order: OrderFields
    parties: Annotated[list[PartyIn], Field(min_length=1, max_length=50)]
    photos: Annotated[list[PhotoIn], Field(max_length=100)]
    events: Annotated[list[TicketEventIn], Field(max_length=5000)]


class Event(s.Payload):
    id: s.Uuid
    number: TicketNumber
    seq: s.Seq
    event: TicketEventIn
    order: OrderFields
    photos: Annotated[list[PhotoIn], Field(max_length=100)] | None = None


class Finding(s.Payload):
    id: s.Uuid
    number: TicketNumber
    authority_code: s.Code
    actor_name: Str
    comment: Annotated[str, StringConstraints(min_length=1, max_length=5000)]


def _refuse(detail: str) -> exchange.Refused:
    return exchange.Refused("not-allowed", detail)


def authorise_shared(session: Session, p: Shared, sender: exchange.Sender) -> None:
    """The lead's node shares its work order with a co-handler's jurisdiction."""
    sender.require(p.jurisdiction_code, f"工单 {p.number} 的主办地")
    if p.jurisdiction_code != sender.source_jurisdiction:
        raise _refuse("只有主办地可以共享工单")
    if sender.target_jurisdiction not in {party.jurisdiction_code for party in p.parties}:
        raise _refuse(f"工单 {p.number} 没有本辖区的协办部门")
    existing = session.get(WorkOrder, p.id)
    if existing is not None and existing.jurisdiction_code != p.jurisdiction_code:
        raise _refuse(f"工单 {p.number} 已由其他辖区主办")


def authorise_event(session: Session, p: Event, sender: exchange.Sender) -> None:
    """Only the lead's node moves a work order."""
    wo = session.get(WorkOrder, p.id)
    if wo is None:
        return  # not shared here yet: the handler asks for a later delivery
    if wo.number != p.number:
        raise _refuse(f"工单编号 {p.number} 与本节点记录不符")
    sender.require(wo.jurisdiction_code, f"工单 {wo.number} 的主办地")


def authorise_finding(session: Session, p: Finding, sender: exchange.Sender) -> None:
    """Only the node of a co-handling party sends its finding."""
    wo = session.get(WorkOrder, uuid.UUID(str(p.id)))
    if wo is None or wo.replica:
        raise _refuse(f"工单 {p.number} 不由本节点主办")
    try:
        authority = regions.authority_by_code(session, p.authority_code)
    except NotFound:
        raise _refuse(f"部门 {p.authority_code} 不存在") from None
    party = next((x for x in wo.parties if x.authority_id == authority.id), None)
    if party is None:
        raise _refuse(f"部门 {p.authority_code} 不是工单 {wo.number} 的协办部门")
    sender.require(party.jurisdiction_code, f"协办部门 {p.authority_code} 所在辖区")
