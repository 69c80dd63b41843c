"""What every use case of work orders shares: configuration, the calendar, numbering,
events, notices and — above all — who may see and do what. Services take a Session and
never commit."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tongban.calendar import service as calendar
from tongban.db import utcnow
from tongban.errors import NotFound
from tongban.identity.domain import Duty, Role
from tongban.identity.models import Account
from tongban.kernel import events, numbering
from tongban.tickets import categories, geo
from tongban.tickets.config import TicketSettings, ticket_settings
from tongban.tickets.deadlines import WorkingHours
from tongban.tickets.domain import WITH_AUTHORITY, Actor, TicketState
from tongban.tickets.models import TicketNotice, TicketParty, WorkOrder

# --- configuration ------------------------------------------------------------------


def settings(session: Session) -> TicketSettings:
    """The tickets settings of the node whose unit of work `session` is."""
    return ticket_settings(session)


def taxonomy(session: Session) -> categories.Taxonomy:
    """The category taxonomy in force (the shipped one unless configured)."""
    path = settings(session).categories_path
    return categories.cached(str(path) if path else None)


def region_index(session: Session) -> geo.RegionIndex:
    """The area polygons in force (the shipped synthetic ones unless configured)."""
    path = settings(session).geojson_path
    return geo.cached(str(path) if path else None)


def working_hours(session: Session) -> WorkingHours:
    s = settings(session)
    return WorkingHours(time.fromisoformat(s.workday_start), time.fromisoformat(s.workday_end))


def workday_predicate(session: Session) -> Callable[[date], bool]:
    """Working days with the operator's calendar overrides (read once)."""
    return calendar.workday_predicate(session)


# --- numbering and history ---------------------------------------------------------------


def next_sequence(session: Session, scope: str) -> tuple[str, int]:
    """(day, sequence) for `scope` (a city code, or a supervision prefix) today, from
    the kernel's numbering service."""
    day = calendar.local_date(utcnow()).strftime("%Y%m%d")
    return day, numbering.next_value(session, f"ticket:{scope}", day)


def notify(
    session: Session,
    wo: WorkOrder | None,
    kind: str,
    text: str,
    *,
    account_id: uuid.UUID | None = None,
    authority_id: uuid.UUID | None = None,
    jurisdiction_code: str | None = None,
    phone: str | None = None,
) -> TicketNotice:
    notice = TicketNotice(
        ticket_id=wo.id if wo else None,
        kind=kind,
        account_id=account_id,
        authority_id=authority_id,
        jurisdiction_code=jurisdiction_code,
        phone=phone,
        text=text,
    )
    session.add(notice)
    return notice


def tell_reporters(session: Session, wo: WorkOrder, kind: str, text: str) -> int:
    """Tell the reporter of `wo` and of every report merged into it; returns how many."""
    told = 0
    for w in [wo, *wo.merged]:
        if w.reporter_id is None and not w.reporter_phone and not w.reporter_email:
            continue
        notify(
            session,
            w,
            kind,
            f"您反映的问题（工单 {w.number}）：{text}",
            account_id=w.reporter_id,
            phone=None if w.reporter_id else w.reporter_phone,
        )
        told += 1
    return told


# --- who sees and does what -------------------------------------------------------------


# "Co-handled by" as `id IN (ticket ids of the parties)`, not a correlated EXISTS: the
# planner starts from the few parties (indexed) instead of probing every work order.


def _co_handler_clause(authority_id: uuid.UUID) -> Any:
    return WorkOrder.id.in_(
        select(TicketParty.ticket_id).where(TicketParty.authority_id == authority_id)
    )


def _partner_clause(column: Any, value: str) -> Any:
    party_col = TicketParty.city_code if column is WorkOrder.city_code else None
    party_col = party_col if party_col is not None else TicketParty.jurisdiction_code
    return WorkOrder.id.in_(select(TicketParty.ticket_id).where(party_col == value))


def visible_clause(actor: Account) -> Any:
    """The SQL condition for the work orders `actor` may see (None: none at all)."""
    branches = visible_branches(actor)
    return None if branches is None else or_(*branches)


def visible_branches(actor: Account) -> list[Any] | None:
    """`visible_clause` as disjoint conditions whose OR it is: what a role leads (or
    its city or province leads), and what it co-handles led by another. Each is served
    by an index, where their OR would scan (the lists read them as a UNION ALL)."""
    role = Role(actor.role)
    if role in (Role.RESIDENT, Role.ENTERPRISE, Role.GRID):
        return [WorkOrder.reporter_id == actor.id]
    if role is Role.OFFICER and actor.authority_id is not None:
        handled = WorkOrder.state.in_([s.value for s in WITH_AUTHORITY])
        return [
            handled & (WorkOrder.authority_id == actor.authority_id),
            handled
            & WorkOrder.authority_id.is_distinct_from(actor.authority_id)
            & _co_handler_clause(actor.authority_id),
        ]
    if role in (Role.DISPATCHER, Role.HOTLINE) and actor.city_code:
        return [
            WorkOrder.city_code == actor.city_code,
            (WorkOrder.city_code != actor.city_code)
            & _partner_clause(WorkOrder.city_code, actor.city_code),
        ]
    if role is Role.SUPERVISOR and actor.jurisdiction_code:
        return [
            WorkOrder.jurisdiction_code == actor.jurisdiction_code,
            (WorkOrder.jurisdiction_code != actor.jurisdiction_code)
            & _partner_clause(WorkOrder.jurisdiction_code, actor.jurisdiction_code),
        ]
    if role is Role.ADMIN:
        return [WorkOrder.id.is_not(None)]
    return None


def is_co_handler(actor: Account, wo: WorkOrder) -> bool:
    return (
        actor.role == Role.OFFICER
        and actor.authority_id is not None
        and any(p.authority_id == actor.authority_id for p in wo.parties)
    )


def can_see(actor: Account, wo: WorkOrder) -> bool:
    role = Role(actor.role)
    if role in (Role.RESIDENT, Role.ENTERPRISE, Role.GRID):
        return wo.reporter_id == actor.id
    if role is Role.OFFICER:
        return TicketState(wo.state) in WITH_AUTHORITY and (
            wo.authority_id == actor.authority_id or is_co_handler(actor, wo)
        )
    if role in (Role.DISPATCHER, Role.HOTLINE):
        return actor.city_code is not None and (
            wo.city_code == actor.city_code
            or any(p.city_code == actor.city_code for p in wo.parties)
        )
    if role is Role.SUPERVISOR:
        return actor.jurisdiction_code is not None and (
            wo.jurisdiction_code == actor.jurisdiction_code
            or any(p.jurisdiction_code == actor.jurisdiction_code for p in wo.parties)
        )
    return role is Role.ADMIN


def actor_kind(actor: Account, wo: WorkOrder) -> Actor | None:
    """How the state machine sees `actor` on `wo` (None: no part in its loop)."""
    if wo.replica:  # led on another node: nobody here drives its loop
        return None
    role = Role(actor.role)
    if wo.reporter_id is not None and wo.reporter_id == actor.id:
        return Actor.REPORTER
    if role is Role.OFFICER and actor.authority_id is not None:
        return Actor.AUTHORITY if actor.authority_id == wo.authority_id else None
    # The lead city's 12345 centre runs the loop; the partner city's only watches.
    if role is Role.DISPATCHER and actor.city_code == wo.city_code:
        return Actor.DISPATCHER
    if role is Role.HOTLINE and actor.city_code == wo.city_code and wo.reporter_id is None:
        return Actor.OPERATOR
    if role is Role.SUPERVISOR and actor.jurisdiction_code == wo.jurisdiction_code:
        return Actor.SUPERVISOR
    return None


def is_authority_head(actor: Account) -> bool:
    """The authority's head, for escalations: an officer with the approver duty."""
    return actor.role == Role.OFFICER and actor.duty == Duty.APPROVER


def get(session: Session, actor: Account, ref: uuid.UUID | str) -> WorkOrder:
    """A work order by id or number, if `actor` may see it (an unseen one is 'not found')."""
    if isinstance(ref, uuid.UUID):
        wo = session.get(WorkOrder, ref)
    else:
        wo = session.scalar(select(WorkOrder).where(WorkOrder.number == ref))
    if wo is None or not can_see(actor, wo):
        raise NotFound("工单不存在或无权查看", type="unknown-work-order")
    return wo


def effective(wo: WorkOrder) -> WorkOrder:
    """The work order whose outcome `wo` shares: itself, or the one it was merged into."""
    seen = 0
    while wo.merged_into is not None and seen < 10:
        wo = wo.merged_into
        seen += 1
    return wo


def now() -> datetime:
    return utcnow()


def today() -> date:
    """Today in China."""
    return calendar.local_date(utcnow())


@events.subscribe(events.RecordConcerns)
def ticket_concerns(session: Session, q: events.RecordConcerns) -> events.Concerned | None:
    """Whom a step of a work order concerns (notifications ask): its reporters (and those
    of the reports merged into it) and the lead authority's staff."""
    if q.kind != WorkOrder.__tablename__:
        return None
    wo = session.get(WorkOrder, q.record_id)
    if wo is None:
        return None
    reporters = tuple(w.reporter_id for w in [wo, *wo.merged] if w.reporter_id is not None)
    return events.Concerned(
        accounts=reporters,
        authority_id=wo.authority_id,
        label=f"工单 {wo.number}",
        link=f"/tickets/{wo.id}",
        staff_link=f"/tickets/{wo.id}",
    )
