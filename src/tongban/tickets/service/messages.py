"""The joint work-order messages as a receiving node accepts them (see federation.py):
typed payloads, and who may send them for which work order.

- `ticket.shared` and `ticket.event` are the snapshot and the change of the kernel's
  replication (`federation.WORK_ORDERS`): the kernel checks that they come from the node
  serving the lead's jurisdiction (the work order's `jurisdiction_code`); the checks
  only work orders have are `check_shared` and `check_event` below;
- `ticket.finding` comes from the node serving the jurisdiction of the co-handling
  party it names, to the lead (`authorise_finding`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints
from sqlalchemy.orm import Session

from tongban.errors import NotFound
from tongban.exchange import schema as s
from tongban.exchange import service as exchange
from tongban.kernel import replication
from tongban.regions import service as regions
from tongban.tickets import reportmap
from tongban.tickets.domain import Resolution, TicketState
from tongban.tickets.models import TicketParty, WorkOrder
from tongban.tickets.service import common
from tongban.types import Latitude, Longitude

TicketNumber = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,24}$")]
Str = Annotated[str, StringConstraints(max_length=200)]


class TicketEventIn(replication.EventIn):
    """A work order's event as it travels: its states are work-order states."""

    from_state: TicketState | None
    to_state: TicketState


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
    """`ticket.shared`: the snapshot that creates a co-handler's replica."""

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
    """`ticket.event`: the lead's next event and the work-order fields as they stand."""

    id: s.Uuid
    number: TicketNumber
    seq: s.Seq
    event: TicketEventIn
    order: OrderFields
    photos: Annotated[list[PhotoIn], Field(max_length=100)] | None = None


class Finding(s.Payload):
    """`ticket.finding`: a co-handler's finding (联办意见), for the lead to record."""

    id: s.Uuid
    number: TicketNumber
    authority_code: s.Code
    actor_name: Str
    comment: Annotated[str, StringConstraints(min_length=1, max_length=5000)]


def _refuse(detail: str) -> exchange.Refused:
    return exchange.Refused("not-allowed", detail)


def check_shared(session: Session, p: Shared, sender: exchange.Sender) -> None:
    """Besides the lead's right (the kernel's): the snapshot goes to a co-handler's
    jurisdiction, and never replaces a work order another jurisdiction leads here."""
    if sender.target_jurisdiction not in {party.jurisdiction_code for party in p.parties}:
        raise _refuse(f"工单 {p.number} 没有本辖区的协办部门")
    existing = session.get(WorkOrder, p.id)
    if existing is not None and existing.jurisdiction_code != p.jurisdiction_code:
        raise _refuse(f"工单 {p.number} 已由其他辖区主办")
    check_shared_point(session, p)


def check_shared_point(session: Session, p: Shared) -> None:
    """A reported point a peer sends must lie in the city it names — the intake's own
    check (`reportmap.point_outside_city`), on this node's outlines — or be one the
    router placed there from a gap or the coast (`locate` snaps it to that city)."""
    if p.lat is None or p.lon is None:
        return
    index = common.region_index(session)
    if reportmap.point_outside_city(index, p.lat, p.lon, p.city_code) is None:
        return
    placed = index.locate(p.lon, p.lat, 0.0)
    if placed is not None and placed.snapped and placed.city_code == p.city_code:
        return
    raise _refuse(f"工单 {p.number} 的位置（{p.lat}, {p.lon}）不在所报城市 {p.city_code} 范围内")


def check_event(session: Session, p: Event, sender: exchange.Sender, wo: WorkOrder) -> None:
    """Besides the lead's right (the kernel's): the number is the work order's, and only
    this node moves a work order it leads (another node's change to it is refused; on
    one node the lead's own change comes back and is found held already)."""
    if wo.number != p.number:
        raise _refuse(f"工单编号 {p.number} 与本节点记录不符")
    if not wo.replica and not sender.local:
        raise _refuse(f"工单 {wo.number} 由本节点主办，不接受其他节点的更新")


def finding_party(session: Session, wo: WorkOrder, authority_code: str) -> TicketParty | None:
    """The co-handling party of `wo` whose authority has `authority_code` (None: none)."""
    try:
        authority = regions.authority_by_code(session, authority_code)
    except NotFound:
        return None
    return next((x for x in wo.parties if x.authority_id == authority.id), None)


def authorise_finding(session: Session, p: Finding, sender: exchange.Sender) -> None:
    """Only the node of a co-handling party sends its finding, for that party's
    jurisdiction, about a work order this node leads."""
    wo = session.get(WorkOrder, p.id)
    if wo is None or wo.replica:
        raise _refuse(f"工单 {p.number} 不由本节点主办")
    party = finding_party(session, wo, p.authority_code)
    if party is None:
        raise _refuse(f"部门 {p.authority_code} 不是工单 {wo.number} 的协办部门")
    sender.require(party.jurisdiction_code, f"协办部门 {p.authority_code} 所在辖区")
    if party.jurisdiction_code != sender.source_jurisdiction:
        raise _refuse(
            f"联办意见只能由协办部门所在辖区（{party.jurisdiction_code}）发送，"
            f"而非 {sender.source_jurisdiction}"
        )
