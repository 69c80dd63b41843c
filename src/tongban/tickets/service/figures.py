"""Figures per authority and per city: on-time closure, reopen and satisfaction rates,
and the hot spots of recurring problems (one SQL pass each, portable)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from tongban.errors import PermissionDenied
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.regions import service as regions
from tongban.tickets.domain import Resolution, TicketState, rate
from tongban.tickets.models import WorkOrder
from tongban.tickets.service import common


@dataclass
class Row:
    key: str
    name: str
    total: int
    closed: int
    on_time: int
    reopened: int
    feedback: int
    satisfied: int
    overdue_open: int

    @property
    def on_time_rate(self) -> float | None:
        return rate(self.on_time, self.closed)

    @property
    def reopen_rate(self) -> float | None:
        return rate(self.reopened, self.closed)

    @property
    def satisfaction_rate(self) -> float | None:
        return rate(self.satisfied, self.feedback)


@dataclass
class HotSpot:
    cell: str
    lat: float
    lon: float
    category_code: str
    count: int
    city_code: str


@dataclass
class Figures:
    days: int
    scope: str
    by_authority: list[Row]
    by_city: list[Row]
    hot_spots: list[HotSpot]
    overall: Row


def _scope(actor: Account) -> tuple[Any, str]:
    if actor.role == Role.SUPERVISOR and actor.jurisdiction_code:
        return WorkOrder.jurisdiction_code == actor.jurisdiction_code, actor.jurisdiction_code
    if actor.role in (Role.DISPATCHER, Role.HOTLINE) and actor.city_code:
        return WorkOrder.city_code == actor.city_code, actor.city_code
    if actor.role == Role.ADMIN:
        return WorkOrder.id.is_not(None), "all"
    raise PermissionDenied("当前账户无权查看统计")


def _measures() -> list[Any]:
    closed = (WorkOrder.state == TicketState.CLOSED.value) & (
        func.coalesce(WorkOrder.resolution, "") != Resolution.INVALID.value
    )
    running = WorkOrder.state.in_(
        [TicketState.DISPATCHED.value, TicketState.ACCEPTED.value, TicketState.IN_PROGRESS.value,
         TicketState.REOPENED.value]
    )  # fmt: skip
    one = 1
    return [
        func.count(),
        func.sum(case((closed, one), else_=0)),
        func.sum(case((closed & WorkOrder.on_time.is_(True), one), else_=0)),
        func.sum(case((closed & (WorkOrder.reopen_count > 0), one), else_=0)),
        func.sum(case((WorkOrder.satisfied.is_not(None), one), else_=0)),
        func.sum(case((WorkOrder.satisfied.is_(True), one), else_=0)),
        func.sum(case((running & (WorkOrder.deadline_flag == "overdue"), one), else_=0)),
    ]


def _row(key: str, name: str, values: Any) -> Row:
    return Row(key, name, *[int(v or 0) for v in values])


def figures(session: Session, actor: Account, days: int = 90) -> Figures:
    """The figures of the actor's scope (a supervisor's jurisdiction, a dispatcher's
    city, everything for an administrator) over the last `days` days."""
    where, scope = _scope(actor)
    since = common.now() - timedelta(days=days)
    base = [where, WorkOrder.created_at >= since, WorkOrder.state != TicketState.MERGED.value]
    by_auth = session.execute(
        select(WorkOrder.authority_id, func.max(WorkOrder.authority_name), *_measures())
        .where(*base)
        .group_by(WorkOrder.authority_id)
    ).all()
    by_city = session.execute(
        select(WorkOrder.city_code, *_measures()).where(*base).group_by(WorkOrder.city_code)
    ).all()
    overall = session.execute(select(*_measures()).where(*base)).one()
    names = {c.code: c.name for c in regions.list_cities(session)}
    s = common.settings(session)
    hot_since = common.now() - timedelta(days=s.hotspot_days)
    hot = session.execute(
        select(
            WorkOrder.cell,
            WorkOrder.category_code,
            func.count(),
            func.max(WorkOrder.city_code),
        )
        .where(where, WorkOrder.cell.is_not(None), WorkOrder.created_at >= hot_since)
        .group_by(WorkOrder.cell, WorkOrder.category_code)
        .having(func.count() >= s.hotspot_min)
        .order_by(func.count().desc())
        .limit(20)
    ).all()
    spots = []
    for cell, category, count, city in hot:
        key = str(cell)
        lat_i, lon_i = (int(x) for x in key.split(":"))
        spots.append(
            HotSpot(key, (lat_i + 0.5) / 100, (lon_i + 0.5) / 100, category, int(count), str(city))
        )
    return Figures(
        days,
        scope,
        sorted(
            (_row(str(r[0]), r[1] or "（未派单）", r[2:]) for r in by_auth),
            key=lambda r: (-r.total, r.name),
        ),
        sorted(
            (_row(str(r[0]), names.get(str(r[0]), str(r[0])), r[1:]) for r in by_city),
            key=lambda r: r.key,
        ),
        spots,
        _row(scope, "合计", overall),
    )
