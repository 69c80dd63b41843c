"""Settlement lists, a page at a time: a hospital counter's own settlements, and the
medical-insurance agency's view of the settlements of its jurisdiction (treated there,
or insured there). Only the columns a list shows are read (rows, no ORM objects), with
the institution's name joined in the same SELECT, keyset-paged (kernel.paging), newest
first, filtered by transaction number, hospital, settlement dates and state (settled or
reversed). Who may see what is `visible_branches`; every filter narrows it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.errors import PermissionDenied
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.kernel import paging
from tongban.medical import clearing_service, service
from tongban.medical.models import Institution, Settlement

COLUMNS = (
    Settlement.id, Settlement.txn_id, Settlement.status, Settlement.period,
    Settlement.settled_at, Settlement.settled_day, Settlement.insured_city,
    Settlement.treatment_city, Settlement.insured_jurisdiction, Settlement.total,
    Settlement.fund, Settlement.account, Settlement.cash, Settlement.reversal_period,
    Settlement.reversed_at, Institution.code.label("institution_code"),
    Institution.name.label("institution_name"),
)  # fmt: skip
NEWEST = paging.Order(
    "medical.settlements",
    (
        paging.Key(Settlement.settled_at, datetime, desc=True),
        paging.Key(Settlement.id, uuid.UUID, desc=True),
    ),
)
STATES = ("settled", "reversed")


@dataclass(frozen=True)
class Filters:
    q: str = ""  # part of the hospital's transaction number
    hospital: str = ""  # an institution code
    state: str = ""  # settled | reversed
    since: date | None = None
    until: date | None = None

    def params(self) -> dict[str, str]:
        return {
            "q": self.q,
            "hospital": self.hospital,
            "state": self.state,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
        }


def filters(
    *,
    q: str | None = None,
    hospital: str | None = None,
    state: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Filters:
    if state and state not in STATES:
        raise paging.refused("state", "状态只能是已结算或已冲正")
    if hospital and (len(hospital) > 20 or not hospital.isalnum()):
        raise paging.refused("hospital", "医疗机构编码无效")
    start, end = paging.day_range(since, until)
    return Filters(
        q=(q or "").strip()[:40], hospital=hospital or "", state=state or "", since=start, until=end
    )


def visible_branches(session: Session, actor: Account) -> list[Any]:
    """A hospital's staff: their institution's settlements. The medical-insurance agency:
    those treated in its jurisdiction, and those insured there and treated elsewhere (two
    disjoint branches, each read along its own index). The federation operator: all."""
    if actor.role == Role.HOSPITAL:
        return [Settlement.institution_id == service.institution_of(session, actor).id]
    if actor.role not in (Role.OFFICER, Role.ADMIN):
        raise PermissionDenied("只有医疗机构和医疗保障部门工作人员可以查看结算记录")
    j = clearing_service.agency_jurisdiction(session, actor)
    if j is None:
        return [Settlement.id.is_not(None)]
    return [
        Settlement.treatment_jurisdiction == j,
        (Settlement.insured_jurisdiction == j) & (Settlement.treatment_jurisdiction != j),
    ]


def statement(session: Session, actor: Account, f: Filters) -> list[Any]:
    """The SELECTs (one per branch of what `actor` may see) narrowed by `f`."""
    out = []
    for branch in visible_branches(session, actor):
        stmt = (
            select(*COLUMNS)
            .join(Institution, Institution.id == Settlement.institution_id)
            .where(branch)
        )
        if f.state:
            stmt = stmt.where(Settlement.status == f.state)
        if f.hospital:
            stmt = stmt.where(Institution.code == f.hospital)
        if f.since:
            stmt = stmt.where(Settlement.settled_day >= f.since)
        if f.until:
            stmt = stmt.where(Settlement.settled_day <= f.until)
        if f.q:
            stmt = stmt.where(Settlement.txn_id.contains(f.q, autoescape=True))
        out.append(stmt)
    return out


def request(cursor: str | None, size: int | str | None) -> paging.PageRequest:
    return paging.request(NEWEST, cursor, size)


def page(session: Session, actor: Account, f: Filters, req: paging.PageRequest) -> paging.Page:
    """One page of the settlements `actor` may see, narrowed by `f`: one SELECT."""
    return paging.fetch(session, statement(session, actor, f), NEWEST, req)
