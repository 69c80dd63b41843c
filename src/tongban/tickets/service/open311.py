"""The Open311 GeoReport v2 view of work orders: services from the taxonomy, service
requests from work orders (open/closed plus status notes), client API keys."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from tongban.db import utcnow
from tongban.errors import NotFound, PermissionDenied, ValidationFailed
from tongban.regions import service as regions
from tongban.tickets import domain
from tongban.tickets.domain import Channel, TicketState
from tongban.tickets.models import Open311Client, TicketParty, WorkOrder
from tongban.tickets.service import common, intake

#: GeoReport v2: "the default query should return requests from the last 90 days";
#: servers may cap how many they return (a page: PAGE_SIZE below).
DEFAULT_WINDOW = timedelta(days=90)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_client(session: Session, name: str) -> tuple[Open311Client, str]:
    """A new API key for an Open311 client; the key is shown once, only its hash kept."""
    if not name.strip():
        raise ValidationFailed("请填写客户端名称", errors=[{"field": "name", "message": "必填"}])
    key = secrets.token_urlsafe(24)
    client = Open311Client(name=name.strip()[:80], key_hash=_hash(key))
    session.add(client)
    session.flush()
    return client, key


def client_for_key(session: Session, key: str | None) -> Open311Client:
    if not key:
        raise PermissionDenied("api_key is required to create a service request", status=403)
    client = session.scalar(select(Open311Client).where(Open311Client.key_hash == _hash(key)))
    if client is None or client.revoked_at is not None:
        raise PermissionDenied("Invalid api_key received -- can't proceed with create_request")
    return client


def check_jurisdiction(session: Session, jurisdiction_id: str | None) -> str | None:
    """A jurisdiction_id is a city's GB/T 2260 code; unknown ones answer 404."""
    if jurisdiction_id is None or jurisdiction_id == "":
        return None
    try:
        return regions.get_city(session, jurisdiction_id).code
    except NotFound:
        raise NotFound(f"jurisdiction_id {jurisdiction_id} not found") from None


# --- services --------------------------------------------------------------------------


def services(session: Session, city_code: str | None) -> list[dict[str, Any]]:
    t = common.taxonomy(session)
    j = regions.get_city(session, city_code).jurisdiction_code if city_code else ""
    out = []
    for c in t.categories.values():
        rules = "；".join(
            f"{t.urgencies[u].name}{t.deadline_rule(c.code, u, j, city_code).label}"
            for u in c.urgencies
        )
        out.append(
            {
                "service_code": c.code,
                "service_name": c.name,
                "description": f"{c.description}（时限：{rules}）",
                "metadata": True,
                "type": "realtime",
                "keywords": c.group,
                "group": c.group,
            }
        )
    return out


def service_definition(session: Session, service_code: str) -> dict[str, Any]:
    t = common.taxonomy(session)
    c = t.category(service_code)
    if c is None:
        raise NotFound(f"service_code {service_code} not found")
    return {
        "service_code": c.code,
        "attributes": [
            {
                "variable": True,
                "code": "urgency",
                "datatype": "singlevaluelist",
                "required": False,
                "datatype_description": "紧急程度，缺省为“投诉”（或该类别的第一项）",
                "order": 1,
                "description": "紧急程度",
                "values": [{"key": u, "name": t.urgencies[u].name} for u in c.urgencies],
            }
        ],
    }


# --- requests -----------------------------------------------------------------------------


@dataclass
class PostedRequest:
    jurisdiction_id: str | None
    service_code: str
    lat: float | None
    long: float | None
    address_string: str
    description: str
    attributes: dict[str, str]
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    device_id: str | None = None
    account_id: str | None = None
    media_url: str | None = None


#: Longest value of each posted field: the columns it is stored in (reporter_name holds
#: first and last name together), so a long value is refused, not cut or failed in SQL.
FIELD_LENGTHS = {
    "jurisdiction_id": 6,
    "service_code": 40,
    "address_string": 200,
    "description": 2000,
    "email": 120,
    "phone": 20,
    "first_name": 40,
    "last_name": 39,
    "device_id": 80,
    "account_id": 80,
    "media_url": 500,
}
ATTRIBUTE_LENGTH = 40


def check_fields(req: PostedRequest) -> None:
    """Every posted field within its declared length; media_url an absolute http(s) URL
    (a `javascript:` or `data:` URL would run in whoever opens the link)."""
    for name, limit in FIELD_LENGTHS.items():
        value = getattr(req, name, None)
        if isinstance(value, str) and len(value) > limit:
            raise ValidationFailed(f"{name} is longer than {limit} characters（{name} 过长）")
    for key, value in req.attributes.items():
        if len(key) > ATTRIBUTE_LENGTH or len(value) > ATTRIBUTE_LENGTH:
            raise ValidationFailed(f"attribute[{key[:40]}] is too long（属性值过长）")
    if req.media_url is not None:
        parts = urlsplit(req.media_url)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise ValidationFailed("media_url must be an http or https URL（须为 http(s) 地址）")


def create_request(
    session: Session, client: Open311Client, req: PostedRequest
) -> tuple[WorkOrder, str]:
    """POST requests: a work order through the open311 channel; returns it and its token."""
    check_fields(req)
    city = check_jurisdiction(session, req.jurisdiction_id)
    t = common.taxonomy(session)
    category = t.category(req.service_code)
    if category is None:
        raise NotFound(f"service_code {req.service_code} not found")
    if req.lat is None and not req.address_string.strip():
        raise ValidationFailed("lat/long or address_string is required")
    if req.lat is None and city is None:
        raise ValidationFailed("jurisdiction_id is required when only address_string is given")
    urgency = req.attributes.get("urgency") or (
        "complaint" if "complaint" in category.urgencies else category.urgencies[0]
    )
    if urgency not in category.urgencies:
        raise ValidationFailed(f"attribute[urgency] {urgency} is not valid for this service")
    # A point with a jurisdiction_id must lie inside that city (intake's check, as on
    # the report page); a point without one goes to the city that contains it.
    name = " ".join(x for x in (req.first_name, req.last_name) if x) or None
    token = secrets.token_hex(8)
    wo = intake.report(
        session,
        None,
        intake.Report(
            category_code=category.code,
            urgency=urgency,
            description=req.description,
            lat=req.lat,
            lon=req.long,
            address=req.address_string,
            city_code=city,
            reporter_name=name,
            reporter_phone=req.phone,
            reporter_email=req.email,
            allow_duplicate=True,
        ),
        channel=Channel.OPEN311,
        extra={
            "open311_client_id": client.id,
            "open311_token": token,
            "open311_account": req.account_id,
            "open311_device": req.device_id,
            "media_url": req.media_url,
        },
    )
    return wo, token


def service_notice(wo: WorkOrder) -> str:
    t = common.taxonomy(_session_of(wo))
    urgency = t.urgencies.get(wo.urgency)
    return f"{urgency.name if urgency else wo.urgency}类诉求，{wo.deadline_rule or '按时限'}办理"


def status_notes(wo: WorkOrder) -> str:
    """The richer state behind GeoReport's open/closed."""
    return _notes(wo, common.effective(wo) if wo.merged_into is not None else None)


def _notes(wo: Any, master: Any) -> str:
    """Status notes of a work order (or a row of one), given the master it was merged
    into (None: not merged)."""
    if master is not None:
        return f"已合并至工单 {master.number}：{domain.STATE_LABELS[TicketState(master.state)]}"
    note = domain.STATE_LABELS[TicketState(wo.state)]
    if wo.resolution == domain.Resolution.PARTLY_FIXED:
        note += "（部分解决）"
    elif wo.resolution == domain.Resolution.INVALID:
        note += "（无效工单）"
    if wo.reopen_count:
        note += f"；曾因反映人不满意重新办理 {wo.reopen_count} 次"
    if wo.joint:
        note += "；跨界联办"
    return note


def as_request(wo: WorkOrder) -> dict[str, Any]:
    """A work order as a GeoReport v2 service request (no personal data)."""
    master = common.effective(wo)
    agency = master.authority_name
    if master.parties:
        agency += "（协办：" + "、".join(p.authority_name for p in master.parties) + "）"
    session = _session_of(wo)
    category = common.taxonomy(session).category(wo.category_code)
    tz = common.working_hours(session).tz
    return {
        "service_request_id": wo.number,
        # A merged report is closed itself; its notes carry the outcome it shares.
        "status": domain.open311_status(TicketState(wo.state)),
        "status_notes": status_notes(wo),
        "service_name": category.name if category else wo.category_code,
        "service_code": wo.category_code,
        "description": wo.description,
        "agency_responsible": agency,
        "service_notice": service_notice(wo),
        "requested_datetime": _iso(wo.created_at, tz),
        "updated_datetime": _iso(max(wo.updated_at, master.updated_at), tz),
        "expected_datetime": _iso(master.due_at, tz),
        "address": wo.address,
        "address_id": "",
        "zipcode": "",
        "lat": wo.lat,
        "long": wo.lon,
        "media_url": wo.media_url or "",
    }


def _iso(moment: datetime | None, tz: tzinfo) -> str:
    if moment is None:
        return ""
    return moment.astimezone(tz).isoformat(timespec="seconds")


def _session_of(wo: WorkOrder) -> Session:
    """The session `wo` was loaded in (its node's settings decide the taxonomy and zone)."""
    session = object_session(wo)
    if session is None:
        raise RuntimeError(f"work order {wo.number} is not attached to a session")
    return session


_SHOWN = (
    "id", "number", "state", "category_code", "urgency", "description", "authority_name",
    "deadline_rule", "created_at", "updated_at", "due_at", "address", "lat", "lon",
    "media_url", "merged_into_id", "joint", "resolution", "reopen_count",
)  # fmt: skip
_COLUMNS = tuple(getattr(WorkOrder, c) for c in _SHOWN)
#: The default and largest page of GET requests (the `page`/`page_size` extension that
#: common GeoReport deployments offer; `page` counts from 1).
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_PAGE = 1000


def page_of(page: str | None, page_size: str | None) -> tuple[int, int]:
    """`page` and `page_size` as numbers; out of range is a refusal naming the field."""

    def number(value: str | None, name: str, default: int, top: int) -> int:
        if value in (None, ""):
            return default
        try:
            n = int(value)
        except ValueError:
            n = 0
        if not 1 <= n <= top:
            raise ValidationFailed(
                f"{name} must be an integer from 1 to {top}",
                errors=[{"field": name, "message": f"须为 1 至 {top} 的整数"}],
            )
        return n

    return (
        number(page, "page", 1, MAX_PAGE),
        number(page_size, "page_size", PAGE_SIZE, MAX_PAGE_SIZE),
    )


def search_requests(
    session: Session,
    *,
    city_code: str | None,
    ids: list[str],
    codes: list[str],
    start: datetime | None,
    end: datetime | None,
    statuses: list[str],
    page: int = 1,
    page_size: int = PAGE_SIZE,
) -> list[dict[str, Any]]:
    """GET requests: by ids (then nothing else applies, as the spec says), or by service
    codes, date window (the last 90 days by default) and open/closed status, newest
    first, one page. Only the columns a GeoReport request shows are read, as rows (no
    ORM objects); the merged-into masters and co-handlers of the whole page come in one
    statement each."""
    stmt = select(*_COLUMNS)
    if city_code:
        stmt = stmt.where(WorkOrder.city_code == city_code)
    if ids:
        stmt = stmt.where(WorkOrder.number.in_(ids[:MAX_PAGE_SIZE]))
        return as_requests(session, list(session.execute(stmt.order_by(*_NEWEST))))
    if codes:
        stmt = stmt.where(WorkOrder.category_code.in_(codes))
    if start is None and end is None:
        start = utcnow() - DEFAULT_WINDOW
    if start is not None:
        stmt = stmt.where(WorkOrder.created_at >= start)
    if end is not None:
        stmt = stmt.where(WorkOrder.created_at <= end)
    closed = [s.value for s in domain.TERMINAL]
    want = set(statuses)
    if want == {"open"}:
        stmt = stmt.where(WorkOrder.state.not_in(closed))
    elif want == {"closed"}:
        stmt = stmt.where(WorkOrder.state.in_(closed))
    stmt = stmt.order_by(*_NEWEST).offset((page - 1) * page_size).limit(page_size)
    return as_requests(session, list(session.execute(stmt)))


_NEWEST = (WorkOrder.created_at.desc(), WorkOrder.id.desc())


def _masters(session: Session, rows: list[Any]) -> dict[Any, Any]:
    """id -> the row whose outcome it shares (itself, or the end of its merge chain)."""
    known = {r.id: r for r in rows}
    for _ in range(10):
        missing = {r.merged_into_id for r in known.values() if r.merged_into_id} - set(known)
        if not missing:
            break
        for r in session.execute(select(*_COLUMNS).where(WorkOrder.id.in_(missing))):
            known[r.id] = r
    out = {}
    for r in rows:
        m, seen = r, 0
        while m.merged_into_id is not None and m.merged_into_id in known and seen < 10:
            m, seen = known[m.merged_into_id], seen + 1
        out[r.id] = m
    return out


def as_requests(session: Session, rows: list[Any]) -> list[dict[str, Any]]:
    """Rows of `_COLUMNS` as GeoReport v2 service requests (no personal data)."""
    if not rows:
        return []
    masters = _masters(session, rows)
    party_names: dict[Any, list[str]] = {}
    master_ids = {m.id for m in masters.values()}
    for tid, name in session.execute(
        select(TicketParty.ticket_id, TicketParty.authority_name)
        .where(TicketParty.ticket_id.in_(master_ids))
        .order_by(TicketParty.ticket_id, TicketParty.authority_name)
    ):
        party_names.setdefault(tid, []).append(name)
    t = common.taxonomy(session)
    tz = common.working_hours(session).tz
    out = []
    for r in rows:
        master = masters[r.id]
        agency = master.authority_name
        if master.id in party_names:
            agency += "（协办：" + "、".join(party_names[master.id]) + "）"
        category = t.category(r.category_code)
        urgency = t.urgencies.get(r.urgency)
        out.append(
            {
                "service_request_id": r.number,
                "status": domain.open311_status(TicketState(r.state)),
                "status_notes": _notes(r, master if r.merged_into_id else None),
                "service_name": category.name if category else r.category_code,
                "service_code": r.category_code,
                "description": r.description,
                "agency_responsible": agency,
                "service_notice": f"{urgency.name if urgency else r.urgency}类诉求，"
                f"{r.deadline_rule or '按时限'}办理",
                "requested_datetime": _iso(r.created_at, tz),
                "updated_datetime": _iso(max(r.updated_at, master.updated_at), tz),
                "expected_datetime": _iso(master.due_at, tz),
                "address": r.address,
                "address_id": "",
                "zipcode": "",
                "lat": r.lat,
                "long": r.lon,
                "media_url": r.media_url or "",
            }
        )
    return out


def request_by_id(session: Session, number: str, city_code: str | None) -> WorkOrder:
    stmt = select(WorkOrder).where(WorkOrder.number == number)
    if city_code:
        stmt = stmt.where(WorkOrder.city_code == city_code)
    wo = session.scalar(stmt)
    if wo is None:
        raise NotFound(f"service_request_id {number} not found")
    return wo


def request_by_token(session: Session, token: str) -> WorkOrder:
    wo = session.scalar(select(WorkOrder).where(WorkOrder.open311_token == token))
    if wo is None:
        raise NotFound(f"token {token} not found")
    return wo
