"""Operators' figures: uses and concessions per city pair (holder's city -> venue's
city), per operator and per period, from the uses this node keeps of the venues of its
own jurisdictions (gates' uploads and venue staff's scans). Never commits.

A concession is an admission under a rule that grants a holder something because of
who they are (age, disability, veteran, blood donor, child): a rule with a condition on
the holder (benefits.Rule.is_concession); "凭码免费参观" for everyone or "全价乘车" is
a use, not a concession. Days and months are China time (UTC+8), as operators count.

Who sees them: the administrator and supervisors every operator of this node; venue
staff their own venues' operators."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.card import scanning
from tongban.card.benefits import Venue, rule_book, venues
from tongban.card.models import CardUse
from tongban.errors import PermissionDenied, ValidationFailed
from tongban.exchange import service as exchange
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.regions.models import City

CHINA = timezone(timedelta(hours=8))
Period = Literal["day", "month"]
#: The longest span one query covers.
MAX_DAYS = 400


@dataclass(frozen=True)
class FigureRow:
    period: str
    operator: str
    holder_city: str
    venue_city: str
    uses: int
    admitted: int
    refused: int
    concessions: int
    #: The holder's jurisdiction is not the venue's (同城待遇 across jurisdictions).
    cross_jurisdiction: bool


@dataclass(frozen=True)
class Figures:
    start: date
    end: date
    period: Period
    operator: str | None
    rows: list[FigureRow]

    @property
    def totals(self) -> dict[str, int]:
        return {
            k: sum(getattr(r, k) for r in self.rows)
            for k in ("uses", "admitted", "refused", "concessions")
        }


def operators_for(session: Session, account: Account) -> list[str] | None:
    """The operators `account` may see (None: all of this node's); 403 for others."""
    if account.role in (Role.ADMIN.value, Role.SUPERVISOR.value):
        return None
    mine = scanning.venues_of(session, account)
    if not mine:
        raise PermissionDenied(
            "仅平台管理员、督查督办人员和场馆工作人员可以查看用卡统计", type="not-venue-staff"
        )
    return sorted({v.operator for v in mine})


def _concession_rules() -> set[str]:
    book = rule_book()
    return {rule.id for rule in book.all_rules() if rule.is_concession}


def figures(
    session: Session,
    account: Account,
    *,
    start: date,
    end: date,
    period: Period = "day",
    operator: str | None = None,
) -> Figures:
    """Uses per (period, operator, holder's city, venue's city) from `start` to `end`
    inclusive (China time), for the venues of this node's jurisdictions."""
    allowed = operators_for(session, account)
    if end < start:
        raise ValidationFailed(
            "结束日期早于开始日期", errors=[{"field": "end", "message": "不能早于开始日期"}]
        )
    if (end - start).days >= MAX_DAYS:
        raise ValidationFailed(
            f"一次最多统计 {MAX_DAYS} 天",
            errors=[{"field": "start", "message": f"跨度不能超过 {MAX_DAYS} 天"}],
        )
    if operator is not None and allowed is not None and operator not in allowed:
        raise PermissionDenied("无权查看该运营方的统计", type="not-venue-staff")
    local = _local_venues(session)
    wanted = {
        code: v.operator
        for code, v in local.items()
        if (operator is None or v.operator == operator)
        and (allowed is None or v.operator in allowed)
    }
    concession = _concession_rules()
    juris = {c.code: c.jurisdiction_code for c in session.scalars(select(City))}
    lo = datetime.combine(start, time.min, CHINA).astimezone(UTC)
    hi = datetime.combine(end + timedelta(days=1), time.min, CHINA).astimezone(UTC)
    counts: dict[tuple[str, str, str, str], list[int]] = {}
    if wanted:
        rows = session.execute(
            select(
                CardUse.used_at,
                CardUse.venue_code,
                CardUse.venue_city,
                CardUse.card_city,
                CardUse.admitted,
                CardUse.rule,
            ).where(
                CardUse.venue_code.in_(sorted(wanted)),
                CardUse.used_at >= lo,
                CardUse.used_at < hi,
            )
        ).yield_per(5000)
        for used_at, venue_code, venue_city, card_city, admitted, rule in rows:
            day = used_at.astimezone(CHINA).date()
            key = (
                day.isoformat() if period == "day" else day.strftime("%Y-%m"),
                wanted[venue_code],
                card_city or "",
                venue_city,
            )
            c = counts.setdefault(key, [0, 0, 0, 0])
            c[0] += 1
            if admitted:
                c[1] += 1
                c[3] += rule in concession
            else:
                c[2] += 1
    out = [
        FigureRow(
            period=p,
            operator=op,
            holder_city=holder,
            venue_city=vcity,
            uses=c[0],
            admitted=c[1],
            refused=c[2],
            concessions=c[3],
            cross_jurisdiction=bool(holder) and juris.get(holder) != juris.get(vcity),
        )
        for (p, op, holder, vcity), c in sorted(counts.items())
    ]
    return Figures(start, end, period, operator, out)


def _local_venues(session: Session) -> dict[str, Venue]:
    """The venues in the jurisdictions this node serves."""
    cities = {c.code: c.jurisdiction_code for c in session.scalars(select(City))}
    return {
        code: v
        for code, v in venues().items()
        if v.city in cities and exchange.serves_here(session, cities[v.city])
    }


def operators_listed(session: Session, account: Account) -> list[str]:
    """The operators `account` may pick from on the figures page."""
    allowed = operators_for(session, account)
    ops = sorted({v.operator for v in _local_venues(session).values()})
    return ops if allowed is None else [o for o in ops if o in allowed]


CSV_HEADER = [f.name for f in fields(FigureRow)]


def to_csv(rows: Iterable[FigureRow]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_HEADER)
    for r in rows:
        w.writerow([getattr(r, name) for name in CSV_HEADER])
    return buf.getvalue()
