"""Intake and routing: a report from any channel becomes a work order routed, by its
location and category, to the authority that must fix it — jointly with the authority on
the other side when it lies near a border between jurisdictions. A report near an open
one of the same category is offered for merging."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.db import utcnow
from tongban.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.regions import service as regions
from tongban.regions.models import Authority
from tongban.tickets import domain, reportmap
from tongban.tickets.domain import Action, Channel, TicketState
from tongban.tickets.geo import M_PER_DEG_LAT, M_PER_DEG_LON, Placement, metres_between
from tongban.tickets.models import TicketParty, WorkOrder
from tongban.tickets.service import common, journal, loop
from tongban.tickets.service.photos import attach_photos


class PossibleDuplicate(Conflict):
    """Open work orders of the same category lie close by: merge, or report anew."""

    type = "possible-duplicate"

    def __init__(self, candidates: list[WorkOrder]) -> None:
        super().__init__(
            "附近已有相同类别的未办结工单，可合并办理",
            errors=[{"field": "merge_into", "message": c.number} for c in candidates],
        )
        self.candidates = candidates


@dataclass
class Report:
    """What a reporter tells, whichever the channel."""

    category_code: str
    urgency: str
    description: str
    lat: float | None = None
    lon: float | None = None
    address: str = ""
    #: The city, when only an address is given (there is no geocoder).
    city_code: str | None = None
    reporter_name: str | None = None
    reporter_phone: str | None = None
    reporter_email: str | None = None
    photo_ids: list[uuid.UUID] = field(default_factory=list)
    #: Join this open work order instead of opening a new one.
    merge_into: uuid.UUID | None = None
    #: Open a new work order even though similar ones are open nearby.
    allow_duplicate: bool = False


@dataclass
class Routing:
    city_code: str
    jurisdiction_code: str
    district_code: str | None
    lead: Authority
    co_handlers: list[tuple[Authority, float]]
    note: str
    placement: Placement | None = None


# --- routing --------------------------------------------------------------------------


def authority_for(session: Session, authority_type: str, city_code: str) -> Authority:
    """The city's authority of `authority_type`, or of the taxonomy's fallback type when
    the federation has none of that type (one query for the city's authorities)."""
    city = regions.get_city(session, city_code)
    by_type = {a.type: a for a in regions.list_authorities(session, city_code=city.code)}
    for t in (authority_type, common.taxonomy(session).fallback_authority_type):
        if t in by_type:
            return by_type[t]
    raise NotFound(f"{city.name}没有可派单的部门", type="no-competent-authority")


def route(
    session: Session,
    category_code: str,
    *,
    lat: float | None = None,
    lon: float | None = None,
    city_code: str | None = None,
) -> Routing:
    """Where a report of `category_code` goes: by its coordinates when given (with the
    co-handlers across a nearby border), else by the city named."""
    category = common.taxonomy(session).category(category_code)
    if category is None:
        raise ValidationFailed(
            "问题类别不存在", errors=[{"field": "category_code", "message": "请选择问题类别"}]
        )
    placement = None
    if lat is not None and lon is not None:
        placement = common.region_index(session).locate(
            lon, lat, common.settings(session).border_metres
        )
        if placement is None:
            raise ValidationFailed(
                "该位置不在本平台服务范围内",
                type="outside-service-area",
                errors=[{"field": "lat", "message": "位置不在服务范围内，请核对经纬度"}],
            )
        city_code = placement.city_code
    if city_code is None:
        raise ValidationFailed(
            "请填写问题位置（经纬度）或选择所在城市",
            errors=[{"field": "city_code", "message": "请填写经纬度或选择城市"}],
        )
    city = regions.get_city(session, city_code)
    lead = authority_for(session, category.authority_type, city.code)
    co: list[tuple[Authority, float]] = []
    where = city.name
    if placement is not None and placement.district_code:
        d = common.region_index(session).area(placement.district_code)
        where += d.name if d else ""
    parts = [f"位于{where}"]
    if lead.type != category.authority_type:
        parts.append(f"本地未设{category.name}主管部门类型，由{lead.name}受理转办")
    if placement is not None:
        for n in placement.neighbours:
            other = authority_for(session, category.authority_type, n.city_code)
            co.append((other, n.distance_m))
            j = regions.get_jurisdiction(session, n.jurisdiction_code)
            parts.append(f"距{j.name}边界约 {n.distance_m:.0f} 米，跨界联办：协办{other.name}")
    parts.append(f"主办{lead.name}")
    return Routing(
        city.code,
        city.jurisdiction_code,
        placement.district_code if placement else None,
        lead,
        co,
        "；".join(parts),
        placement,
    )


# --- duplicates --------------------------------------------------------------------------


def cell_of(lat: float | None, lon: float | None) -> str | None:
    """The ~1 km grid cell of a location (hot spots, duplicate pre-filter)."""
    if lat is None or lon is None:
        return None
    return f"{math.floor(lat * 100)}:{math.floor(lon * 100)}"


def find_duplicates(
    session: Session,
    category_code: str,
    *,
    lat: float | None,
    lon: float | None,
    city_code: str | None,
    address: str = "",
) -> list[WorkOrder]:
    """Open work orders of the same category within the duplicate distance (or, without
    coordinates, at the same address in the same city), nearest first."""
    open_states = [s.value for s in domain.OPEN_STATES]
    q = select(WorkOrder).where(
        WorkOrder.category_code == category_code,
        WorkOrder.state.in_(open_states),
        WorkOrder.merged_into_id.is_(None),
        WorkOrder.replica.is_(False),  # led on another node: never merged into here
    )
    if lat is not None and lon is not None:
        r = common.settings(session).duplicate_metres
        dlat, dlon = r / M_PER_DEG_LAT * 1.01, r / M_PER_DEG_LON * 1.2
        q = q.where(WorkOrder.lat.between(lat - dlat, lat + dlat))
        q = q.where(WorkOrder.lon.between(lon - dlon, lon + dlon))
        found = []
        for wo in session.scalars(q.limit(50)):
            assert wo.lat is not None and wo.lon is not None
            d = metres_between(lon, lat, wo.lon, wo.lat)
            if d <= r:
                found.append((d, wo))
        return [wo for _, wo in sorted(found, key=lambda t: t[0])][:5]
    norm = "".join(address.split())
    if not city_code or not norm:
        return []
    q = q.where(WorkOrder.city_code == city_code, WorkOrder.lat.is_(None))
    return [wo for wo in session.scalars(q.limit(50)) if "".join(wo.address.split()) == norm][:5]


# --- reporting ----------------------------------------------------------------------------

_CHANNEL_BY_ROLE = {
    Role.RESIDENT: Channel.WEB,
    Role.ENTERPRISE: Channel.WEB,
    Role.HOTLINE: Channel.HOTLINE,
    Role.GRID: Channel.GRID,
}


def _validate(session: Session, report: Report, *, caller_required: bool) -> None:
    t = common.taxonomy(session)
    errors = []
    category = t.category(report.category_code)
    if category is None:
        errors.append({"field": "category_code", "message": "请选择问题类别"})
    elif report.urgency not in category.urgencies:
        errors.append({"field": "urgency", "message": "该类别不适用所选紧急程度"})
    if not report.description.strip():
        errors.append({"field": "description", "message": "请描述问题"})
    elif len(report.description) > 2000:
        errors.append({"field": "description", "message": "问题描述不超过 2000 字"})
    if (report.lat is None) != (report.lon is None):
        errors.append({"field": "lat", "message": "经度和纬度须同时填写"})
    if report.lat is not None and not -90 <= report.lat <= 90:
        errors.append({"field": "lat", "message": "纬度应在 -90 至 90 之间"})
    if report.lon is not None and not -180 <= report.lon <= 180:
        errors.append({"field": "lon", "message": "经度应在 -180 至 180 之间"})
    if report.lat is None and not report.address.strip():
        errors.append({"field": "address", "message": "请填写经纬度或详细地址"})
    if len(report.address) > 200:
        errors.append({"field": "address", "message": "地址不超过 200 字"})
    if caller_required and not (report.reporter_phone or "").strip():
        errors.append({"field": "reporter_phone", "message": "请填写来电号码"})
    # The point must lie inside the city the report names — in every channel (page, JSON
    # API, Open311), with the same outlines the report map draws.
    outside = None
    if not any(e["field"] in ("lat", "lon") for e in errors):
        outside = reportmap.point_outside_city(
            common.region_index(session), report.lat, report.lon, report.city_code
        )
    if outside is not None and not errors:
        assert report.city_code is not None
        detail = reportmap.outside_city_detail(common.region_index(session), report.city_code)
        raise ValidationFailed(detail, type="outside-city", errors=[outside])
    if outside is not None:
        errors.append(outside)
    if errors:
        raise ValidationFailed("反映内容有误", errors=errors)


def report(
    session: Session,
    actor: Account | None,
    r: Report,
    *,
    channel: Channel | None = None,
    extra: dict[str, object] | None = None,
) -> WorkOrder:
    """Record a report as a work order: routed and dispatched at once, or — when the
    reporter chose to — merged into an open one nearby. Residents and grid inspectors
    report for themselves; hotline operators for a caller; Open311 clients (actor None)
    through `channel=open311`."""
    if channel is None:
        if actor is None or Role(actor.role) not in _CHANNEL_BY_ROLE:
            raise PermissionDenied("当前账户不能反映问题")
        channel = _CHANNEL_BY_ROLE[Role(actor.role)]
    _validate(session, r, caller_required=channel is Channel.HOTLINE)
    routing = route(session, r.category_code, lat=r.lat, lon=r.lon, city_code=r.city_code)
    candidates: list[WorkOrder] = []
    if not r.allow_duplicate or r.merge_into is not None:
        candidates = find_duplicates(
            session,
            r.category_code,
            lat=r.lat,
            lon=r.lon,
            city_code=routing.city_code,
            address=r.address,
        )
    target = None
    if r.merge_into is not None:
        target = next((c for c in candidates if c.id == r.merge_into), None)
        if target is None:
            raise Conflict("只能合并到附近相同类别的未办结工单", type="merge-not-allowed")
    elif candidates and channel is not Channel.OPEN311:
        raise PossibleDuplicate(candidates)
    self_report = channel in (Channel.WEB, Channel.GRID)
    day, seq = common.next_sequence(session, routing.city_code)
    wo = WorkOrder(
        number=domain.work_order_number(routing.city_code, day, seq),
        channel=channel.value,
        category_code=r.category_code,
        urgency=r.urgency,
        description=r.description.strip(),
        address=r.address.strip(),
        lat=r.lat,
        lon=r.lon,
        cell=cell_of(r.lat, r.lon),
        jurisdiction_code=routing.jurisdiction_code,
        city_code=routing.city_code,
        district_code=routing.district_code,
        authority_id=routing.lead.id,
        authority_name=routing.lead.name,
        routing_note=routing.note[:300],
        joint=bool(routing.co_handlers),
        state=TicketState.REPORTED.value,
        reporter_id=actor.id if (actor and self_report) else None,
        reporter_name=(actor.display_name if (actor and self_report) else r.reporter_name or "")[
            :80
        ],
        reporter_phone=(actor.phone if (actor and self_report) else r.reporter_phone) or None,
        reporter_email=r.reporter_email,
        recorded_by=actor.id if (actor and not self_report) else None,
        created_at=utcnow(),
        **(extra or {}),
    )
    session.add(wo)
    session.flush()
    for authority, distance in routing.co_handlers:
        wo.parties.append(
            TicketParty(
                ticket_id=wo.id,
                authority_id=authority.id,
                authority_name=authority.name,
                jurisdiction_code=authority.jurisdiction_code,
                city_code=authority.city_code or "",
                distance_m=distance,
            )
        )
    if actor is not None and r.photo_ids:
        attach_photos(session, actor, wo, r.photo_ids, "report")
    label = domain.CHANNEL_LABELS[channel]
    journal.record(session, wo, "report", None, TicketState.REPORTED, actor, label)
    if target is not None:
        _merge(session, wo, target, actor)
    else:
        loop.dispatch_to(session, wo, routing.lead, None, Action.DISPATCH, routing.note)
    return wo


def report_task(
    session: Session, *, category_code: str, city_code: str, description: str, address: str
) -> WorkOrder:
    """A task of an emergency incident as a work order of `city_code`: routed to the
    category's authority and dispatched at once like any report (channel 应急联动任务,
    urgent when the category has that urgency), then handled in the usual loop."""
    category = common.taxonomy(session).category(category_code)
    if category is None:
        raise ValidationFailed(
            "问题类别不存在", errors=[{"field": "category_code", "message": "请选择问题类别"}]
        )
    urgency = "urgent" if "urgent" in category.urgencies else category.urgencies[0]
    r = Report(
        category_code=category_code,
        urgency=urgency,
        description=description,
        address=address or regions.get_city(session, city_code).name,
        city_code=city_code,
        allow_duplicate=True,
    )
    return report(session, None, r, channel=Channel.EMERGENCY)


def work_order_state(session: Session, wo_id: uuid.UUID) -> tuple[str, str, str] | None:
    """(number, state, its Chinese label) of a work order, for the context that made it."""
    wo = session.get(WorkOrder, wo_id)
    if wo is None:
        return None
    return wo.number, wo.state, domain.STATE_LABELS[TicketState(wo.state)]


def _merge(session: Session, wo: WorkOrder, target: WorkOrder, actor: Account | None) -> None:
    from_state = wo.state
    wo.state = TicketState.MERGED.value
    wo.resolution = domain.Resolution.MERGED.value
    wo.merged_into = target
    wo.closed_at = utcnow()
    journal.record(session, wo, "merge", from_state, wo.state, actor, f"合并至工单 {target.number}")
    journal.record(
        session,
        target,
        "merged_in",
        target.state,
        target.state,
        actor,
        f"工单 {wo.number} 合并至本工单",
    )
    common.tell_reporters(
        session, wo, "merged", f"已与工单 {target.number} 合并办理，办理结果将同步告知您"
    )


def merge(session: Session, actor: Account, wo_id: uuid.UUID, into: uuid.UUID | str) -> WorkOrder:
    """A dispatcher merges a work order not yet taken up into an open one nearby."""
    wo = common.get(session, actor, wo_id)
    if common.actor_kind(actor, wo) is not domain.Actor.DISPATCHER:
        raise PermissionDenied("只有本市派单员可以合并工单")
    target = common.get(session, actor, into if isinstance(into, uuid.UUID) else into.strip())
    if target.replica:
        raise Conflict("该工单由其他节点主办，不能合并", type="merge-not-allowed")
    if target.id == wo.id or target.category_code != wo.category_code:
        raise Conflict("只能合并到相同类别的其他工单", type="merge-not-allowed")
    if TicketState(target.state) in domain.TERMINAL:
        raise Conflict("目标工单已结案或已合并", type="merge-not-allowed")
    domain.next_state(TicketState(wo.state), Action.MERGE, domain.Actor.DISPATCHER)  # 409
    _merge(session, wo, target, actor)
    return wo
