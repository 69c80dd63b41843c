"""Case lists, a page at a time: the officer's queue, the supervisor's view, the
window's cases, a resident's "my cases" and the API list. Only the columns a list shows
are read (rows, not ORM objects: no lazy loads), keyset-paged (kernel.paging), with the
filters staff use: number, applicant name or ID number (full, or masked as shown:
`110101********1234`), matter, state, deadline, submission date range and city. What a
role may see is `access` (the same rule as one case's page); every filter narrows it,
none widens it."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from tongban.cases import access
from tongban.cases.domain import CaseState
from tongban.cases.models import Case
from tongban.errors import PermissionDenied
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.kernel import paging
from tongban.localtime import local_bounds

#: What a case list shows (and the API's CaseSummary).
COLUMNS = (
    Case.id, Case.number, Case.matter_code, Case.matter_name, Case.applicant_name,
    Case.state, Case.mode, Case.channel, Case.receiving_city, Case.competent_jurisdiction,
    Case.authority_name, Case.submitted_at, Case.deadline, Case.deadline_flag,
)  # fmt: skip

#: Officers: the nearest deadline first (not yet running last), then the oldest.
QUEUE = paging.Order(
    "cases.queue",
    (
        paging.Key(Case.deadline, date, nullable=True),
        paging.Key(Case.submitted_at, datetime),
        paging.Key(Case.id, uuid.UUID),
    ),
)
#: Everyone else: the newest first.
NEWEST = paging.Order(
    "cases.newest",
    (
        paging.Key(Case.submitted_at, datetime, desc=True),
        paging.Key(Case.id, uuid.UUID, desc=True),
    ),
)
DEADLINE_FLAGS = ("ok", "approaching", "overdue")
#: An ID number as a list shows it masked: a prefix, stars, a suffix.
MASKED = re.compile(r"^([0-9]{0,6})\*{4,}([0-9Xx]{1,4})$")
FULL_ID = re.compile(r"^[0-9]{17}[0-9Xx]$|^[0-9A-HJ-NPQRTUWXY]{18}$")


@dataclass(frozen=True)
class Filters:
    q: str = ""  # part of the number, of the applicant's name or matter, or an ID number
    matter: str = ""
    state: str = ""
    deadline_flag: str = ""
    since: date | None = None
    until: date | None = None
    city: str = ""

    def params(self) -> dict[str, str]:
        return {
            "q": self.q,
            "matter": self.matter,
            "state": self.state,
            "deadline_flag": self.deadline_flag,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "city": self.city,
        }


def filters(
    *,
    q: str | None = None,
    matter: str | None = None,
    state: str | None = None,
    deadline_flag: str | None = None,
    since: str | None = None,
    until: str | None = None,
    city: str | None = None,
) -> Filters:
    """Filters from a query string; a value no list offers is a 422 naming its field."""
    if state and state not in {s.value for s in CaseState}:
        raise paging.refused("state", "没有这个办件状态")
    if deadline_flag and deadline_flag not in DEADLINE_FLAGS:
        raise paging.refused("deadline_flag", "时限筛选只能是时限内、临近时限或已超时")
    if city and not (city.isdigit() and len(city) == 6):
        raise paging.refused("city", "城市代码为 6 位数字")
    if matter and len(matter) > 64:
        raise paging.refused("matter", "事项编码过长")
    start, end = paging.day_range(since, until)
    return Filters(
        q=(q or "").strip()[:40],
        matter=(matter or "").strip(),
        state=state or "",
        deadline_flag=deadline_flag or "",
        since=start,
        until=end,
        city=city or "",
    )


def _search(q: str) -> Any:
    masked = MASKED.match(q)
    if masked:
        prefix, suffix = masked.group(1), masked.group(2).upper()
        return and_(
            Case.applicant_identifier.startswith(prefix, autoescape=True),
            Case.applicant_identifier.endswith(suffix, autoescape=True),
        )
    if FULL_ID.match(q):
        return or_(Case.applicant_identifier == q.upper(), Case.number == q)
    return or_(
        Case.number.contains(q, autoescape=True),
        Case.applicant_name.contains(q, autoescape=True),
        Case.matter_name.contains(q, autoescape=True),
    )


def order_for(actor: Account) -> paging.Order:
    return QUEUE if actor.role == Role.OFFICER else NEWEST


def statement(actor: Account, f: Filters) -> Any:
    """SELECT of the list's columns: what `actor` may see, narrowed by `f`."""
    clause = access.visible_clause(actor)
    if clause is None:
        raise PermissionDenied("当前账户无权查看办件")
    stmt = select(*COLUMNS).where(clause)
    if f.state:
        stmt = stmt.where(Case.state == f.state)
    if f.deadline_flag:
        stmt = stmt.where(Case.deadline_flag == f.deadline_flag)
    if f.matter:
        stmt = stmt.where(Case.matter_code == f.matter)
    if f.city:
        stmt = stmt.where(or_(Case.receiving_city == f.city, Case.competent_city == f.city))
    lo, hi = local_bounds(f.since, f.until)
    if lo is not None:
        stmt = stmt.where(Case.submitted_at >= lo)
    if hi is not None:
        stmt = stmt.where(Case.submitted_at < hi)
    if f.q:
        stmt = stmt.where(_search(f.q))
    return stmt


def request(actor: Account, cursor: str | None, size: int | str | None) -> paging.PageRequest:
    return paging.request(order_for(actor), cursor, size)


def page(session: Session, actor: Account, f: Filters, request: paging.PageRequest) -> paging.Page:
    """One page of the cases `actor` may see, narrowed by `f`: one SELECT."""
    return paging.fetch(session, statement(actor, f), order_for(actor), request)
