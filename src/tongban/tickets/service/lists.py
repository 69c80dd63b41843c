"""Work-order lists, a page at a time: the columns a list shows (no ORM objects, no
lazy loads), the filters staff use (number, category, state, city, district, deadline,
lead/co-handler), keyset paging (kernel.paging). What a role may see is
`common.visible_branches`; every filter narrows it, none widens it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.errors import PermissionDenied
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.kernel import paging
from tongban.tickets.domain import TicketState
from tongban.tickets.models import WorkOrder
from tongban.tickets.service import common

#: What a work-order list shows (and the API's TicketSummary).
COLUMNS = (
    WorkOrder.id, WorkOrder.number, WorkOrder.channel, WorkOrder.category_code,
    WorkOrder.urgency, WorkOrder.state, WorkOrder.city_code, WorkOrder.district_code,
    WorkOrder.authority_name, WorkOrder.joint, WorkOrder.address, WorkOrder.lat,
    WorkOrder.lon, WorkOrder.due_at, WorkOrder.deadline_flag, WorkOrder.closed_at,
    WorkOrder.created_at,
)  # fmt: skip

#: Staff: the most pressing deadline first (no deadline last), then the oldest.
BY_DEADLINE = paging.Order(
    "tickets.by-deadline",
    (
        paging.Key(WorkOrder.due_at, datetime, nullable=True),
        paging.Key(WorkOrder.created_at, datetime),
        paging.Key(WorkOrder.id, uuid.UUID),
    ),
)
#: Reporters: their newest first.
NEWEST = paging.Order(
    "tickets.newest",
    (
        paging.Key(WorkOrder.created_at, datetime, desc=True),
        paging.Key(WorkOrder.id, uuid.UUID, desc=True),
    ),
)
REPORTER_ROLES = (Role.RESIDENT.value, Role.ENTERPRISE.value, Role.GRID.value)
DEADLINE_FLAGS = ("ok", "approaching", "overdue")
TO_VERIFY = ("fixed", "partly_fixed")


@dataclass(frozen=True)
class Filters:
    q: str = ""  # part of the number or the address
    category: str = ""
    state: str = ""  # a TicketState, or "to_verify" (fixed or partly fixed)
    city: str = ""
    district: str = ""
    deadline_flag: str = ""  # ok | approaching | overdue
    role: str = ""  # officers: lead | co
    caller_only: bool = False  # hotline: calls (no reporter account)

    def params(self) -> dict[str, str]:
        """As the query string keeps them across pages."""
        return {
            "q": self.q,
            "category": self.category,
            "state": self.state,
            "city": self.city,
            "district": self.district,
            "deadline_flag": self.deadline_flag,
            "role": self.role,
        }


def filters(
    *,
    q: str | None = None,
    category: str | None = None,
    state: str | None = None,
    city: str | None = None,
    district: str | None = None,
    deadline_flag: str | None = None,
    role: str | None = None,
    categories: set[str] | None = None,
) -> Filters:
    """Filters from a query string; a value no list offers is a 422 naming its field."""
    states = {s.value for s in TicketState} | {"to_verify"}
    if state and state not in states:
        raise paging.refused("state", "没有这个工单状态")
    if deadline_flag and deadline_flag not in DEADLINE_FLAGS:
        raise paging.refused("deadline_flag", "时限筛选只能是时限内、临近时限或已超时")
    if role and role not in ("lead", "co"):
        raise paging.refused("role", "只能筛选主办或协办")
    if category and categories is not None and category not in categories:
        raise paging.refused("category", "没有这个问题类别")
    for name, code in (("city", city), ("district", district)):
        if code and not (code.isdigit() and len(code) == 6):
            raise paging.refused(name, "行政区划代码为 6 位数字")
    return Filters(
        q=(q or "").strip()[:40],
        category=category or "",
        state=state or "",
        city=city or "",
        district=district or "",
        deadline_flag=deadline_flag or "",
        role=role or "",
    )


def order_for(actor: Account) -> paging.Order:
    return NEWEST if actor.role in REPORTER_ROLES else BY_DEADLINE


def statement(actor: Account, f: Filters) -> list[Any]:
    """SELECTs of the list's columns, one per branch of what `actor` may see
    (`common.visible_branches`), each narrowed by `f`."""
    branches = common.visible_branches(actor)
    if branches is None:
        raise PermissionDenied("当前账户无权查看工单")
    return [_narrowed(select(*COLUMNS).where(b), actor, f) for b in branches]


def _narrowed(stmt: Any, actor: Account, f: Filters) -> Any:
    if f.state == "to_verify":
        stmt = stmt.where(WorkOrder.state.in_(TO_VERIFY))
    elif f.state:
        stmt = stmt.where(WorkOrder.state == f.state)
    if f.deadline_flag:
        stmt = stmt.where(WorkOrder.deadline_flag == f.deadline_flag)
    if f.category:
        stmt = stmt.where(WorkOrder.category_code == f.category)
    if f.city:
        stmt = stmt.where(WorkOrder.city_code == f.city)
    if f.district:
        stmt = stmt.where(WorkOrder.district_code == f.district)
    if f.role == "lead" and actor.authority_id:
        stmt = stmt.where(WorkOrder.authority_id == actor.authority_id)
    elif f.role == "co" and actor.authority_id:
        stmt = stmt.where(WorkOrder.authority_id != actor.authority_id)
    if f.caller_only:
        stmt = stmt.where(WorkOrder.reporter_id.is_(None))
    if f.q:
        like = f.q.replace("\\", "").replace("%", "").replace("_", "")
        if like:
            stmt = stmt.where(WorkOrder.number.contains(like) | WorkOrder.address.contains(like))
    return stmt


def page(session: Session, actor: Account, f: Filters, request: paging.PageRequest) -> paging.Page:
    """One page of the work orders `actor` may see, narrowed by `f`: one SELECT."""
    return paging.fetch(session, statement(actor, f), order_for(actor), request)


def first(session: Session, actor: Account, f: Filters, size: int = 20) -> paging.Page:
    """The first rows of a pressing section (returned, to verify, overdue …)."""
    return page(session, actor, f, paging.PageRequest(size=size))


def request(actor: Account, cursor: str | None, size: int | str | None) -> paging.PageRequest:
    return paging.request(order_for(actor), cursor, size)


def with_(f: Filters, **changes: Any) -> Filters:
    return replace(f, **changes)
