"""JSON API of work orders under /api/v1/tickets (bearer tokens or the page session)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Request, Response, UploadFile

from tongban.identity.models import Account
from tongban.kernel import paging
from tongban.tickets import service
from tongban.tickets.models import WorkOrder
from tongban.tickets.schemas import (
    CategoryPublic,
    PhotoPublic,
    ReportCreate,
    RoutePublic,
    RouteQuery,
    TicketAction,
    TicketPublic,
    TicketSummary,
)
from tongban.tickets.service import lists
from tongban.web.deps import CurrentUser, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"])


def ticket_public(actor: Account, wo: WorkOrder) -> TicketPublic:
    return TicketPublic.model_validate(
        {
            **TicketSummary.model_validate(wo).model_dump(),
            "description": wo.description,
            "address": wo.address,
            "lat": wo.lat,
            "lon": wo.lon,
            "jurisdiction_code": wo.jurisdiction_code,
            "district_code": wo.district_code,
            "routing_note": wo.routing_note,
            "resolution": wo.resolution,
            "merged_into": wo.merged_into.number if wo.merged_into else None,
            "satisfied": wo.satisfied,
            "reopen_count": wo.reopen_count,
            "closed_at": wo.closed_at,
            "parties": wo.parties,
            "events": wo.events,
            "photo_ids": [p.id for p in wo.photos],
            "available_actions": [a.value for a in service.available_actions(actor, wo)],
        }
    )


@router.get("/categories", response_model=list[CategoryPublic])
def categories(session: SessionDep) -> object:
    """The category taxonomy: responsible authority type and urgency levels of each."""
    return [
        CategoryPublic(
            code=c.code,
            group=c.group,
            name=c.name,
            authority_type=c.authority_type,
            urgencies=list(c.urgencies),
            description=c.description,
        )
        for c in service.taxonomy(session).categories.values()
    ]


@router.post("/route", response_model=RoutePublic)
def route(body: RouteQuery, session: SessionDep) -> RoutePublic:
    """Where a report would go (a dry run: nothing is written)."""
    r = service.route(
        session, body.category_code, lat=body.lat, lon=body.lon, city_code=body.city_code
    )
    return RoutePublic(
        city_code=r.city_code,
        jurisdiction_code=r.jurisdiction_code,
        district_code=r.district_code,
        lead_authority=r.lead.name,
        co_handlers=[a.name for a, _ in r.co_handlers],
        joint=bool(r.co_handlers),
        note=r.note,
    )


@router.post("/photos", response_model=PhotoPublic, status_code=201)
def upload_photo(
    actor: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File()],
) -> object:
    """Upload one photo (PNG or JPEG); pass its id in `photo_ids`."""
    data = file.file.read(settings.max_upload_bytes + 1)
    return service.store_photo(
        session,
        actor,
        filename=file.filename or "photo",
        data=data,
        upload_dir=settings.upload_dir,
        max_bytes=settings.max_upload_bytes,
    )


@router.post("", response_model=TicketPublic, status_code=201)
def report(body: ReportCreate, actor: CurrentUser, session: SessionDep) -> TicketPublic:
    """Report a problem (resident, grid inspector) or record a call (hotline operator).
    A similar open work order nearby answers 409 `possible-duplicate` listing it: send
    again with `merge_into` (its id) or `allow_duplicate`."""
    wo = service.report(session, actor, service.Report(**body.model_dump()))
    return ticket_public(actor, wo)


@router.get("", response_model=list[TicketSummary])
def list_tickets(
    actor: CurrentUser,
    session: SessionDep,
    request: Request,
    response: Response,
    state: str | None = None,
    deadline_flag: str | None = None,
    q: str | None = None,
    category: str | None = None,
    city: str | None = None,
    district: str | None = None,
    role: str | None = None,
    cursor: str | None = None,
    page_size: str | None = None,
) -> object:
    """The work orders the caller may see, a page at a time (default 50, at most 200),
    filtered by state (`to_verify`: fixed or partly fixed), deadline flag, category,
    city, district, lead/co-handler and part of the number or address. The next page is
    in the `Link: <…>; rel="next"` header (an opaque `cursor`; a tampered one is 422)."""
    f = lists.filters(
        q=q,
        state=state,
        deadline_flag=deadline_flag,
        category=category,
        city=city,
        district=district,
        role=role,
        categories=set(service.taxonomy(session).categories),
    )
    result = lists.page(session, actor, f, lists.request(actor, cursor, page_size))
    paging.link_next(request, response, result)
    return [TicketSummary.model_validate(r) for r in result.rows]


def _ref(value: str) -> uuid.UUID | str:
    try:
        return uuid.UUID(value)
    except ValueError:
        return value


@router.get("/{ref}", response_model=TicketPublic)
def get_ticket(ref: str, actor: CurrentUser, session: SessionDep) -> TicketPublic:
    """One work order, by id or number, with its history."""
    return ticket_public(actor, service.get(session, actor, _ref(ref)))


@router.post("/{ticket_id}/actions", response_model=TicketPublic)
def act(
    ticket_id: uuid.UUID, body: TicketAction, actor: CurrentUser, session: SessionDep
) -> TicketPublic:
    """A step of the loop: accept, return, redispatch, reject_return, start, fix,
    partly_fix (with photo_ids), verify, reject_fix, satisfied, unsatisfied, invalidate."""
    wo = service.act(
        session,
        actor,
        ticket_id,
        body.action,
        body.comment,
        authority_code=body.authority_code,
        photo_ids=body.photo_ids,
    )
    return ticket_public(actor, wo)
