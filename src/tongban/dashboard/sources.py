"""Where the dashboard's events come from: read-only queries over the tables the other
contexts already write, turned into facts (domain.Fact).

Audited events (cases, work orders, evidence, settlements) are read from the audit
chain: its `seq` is gap-free and grows in commit order (entries are chained under the
head's lock at commit), so "every entry after the watermark up to the committed head"
is exactly the new events — a refresh after N events reads N entries, never the past.
Each entry names its record (`case:<id>`); the record's dimensions (cities, mode,
authority, matter, time limit) are read for the batch's records only.

Two record types are not in the chain (免提交 licence verifications, card uses): they are
read by time and id after a settling lag (a row committed later than that after its
own time would be missed; both are written in the transaction that stamps them).

These are lightweight table clauses (`sqlalchemy.table`), not the contexts' ORM
classes: the dashboard reads, never writes, and depends on no other context's code."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Boolean, Integer, String, Uuid, column, select, table, tuple_
from sqlalchemy.orm import Session

from tongban.audit import service as audit
from tongban.calendar import service as calendar
from tongban.dashboard.domain import Fact, Indicator, Key, case_mode
from tongban.db import UTCDateTime

SHANGHAI = ZoneInfo("Asia/Shanghai")

AUDIT_KINDS = ("case.event", "ticket.event", "evidence.access", "medical.settlement.event")

audit_entry = table(
    "audit_entry",
    column("seq", Integer),
    column("at", UTCDateTime),
    column("kind", String),
    column("subject", String),
    column("body", String),
    column("hash", String),
)
audit_checkpoint = table("audit_checkpoint", column("seq", Integer), column("hash", String))
service_case = table(
    "service_case",
    column("id", Uuid),
    column("channel", String),
    column("mode", String),
    column("receiving_city", String),
    column("competent_city", String),
    column("competent_jurisdiction", String),
    column("authority_name", String),
    column("matter_code", String),
    column("time_limit_days", Integer),
    column("submitted_at", UTCDateTime),
    column("accepted_at", UTCDateTime),
)
rating = table("rating", column("case_id", Uuid), column("score", Integer))
ticket = table(
    "ticket",
    column("id", Uuid),
    column("city_code", String),
    column("jurisdiction_code", String),
    column("authority_name", String),
    column("category_code", String),
    column("joint", Boolean),
    column("on_time", Boolean),
    column("replica", Boolean),
)
settlement = table(
    "med_settlement",
    column("id", Uuid),
    column("insured_city", String),
    column("treatment_city", String),
    column("treatment_jurisdiction", String),
    column("total", Integer),
    column("fund", Integer),
)
licence_use = table(
    "licence_use",
    column("id", Uuid),
    column("case_id", Uuid),
    column("type_code", String),
    column("result", String),
    column("verified_at", UTCDateTime),
)
card_use = table(
    "card_use",
    column("id", Uuid),
    column("venue_city", String),
    column("card_jurisdiction", String),
    column("admitted", Boolean),
    column("reason", String),
    column("used_at", UTCDateTime),
    column("received_at", UTCDateTime),
)
city = table("city", column("code", String), column("jurisdiction_code", String))

Owns = Callable[[str], bool]
CHUNK = 900  # ids per IN (…) list: under SQLite's variable limit


def local_day(moment: datetime) -> date:
    return moment.astimezone(SHANGHAI).date()


class WorkingDays:
    """Working days between two dates as a difference of cumulative counts, the
    operator's overrides read once: O(1) per case after the first lookups of a span."""

    BASE = date(2015, 1, 1)

    def __init__(self, is_workday: Callable[[date], bool]) -> None:
        self.is_workday = is_workday
        self.cum: list[int] = [0]  # cum[i]: working days in (BASE, BASE + i]

    def ordinal(self, d: date) -> int:
        i = (d - self.BASE).days
        if i < 0:
            return -sum(1 for k in range(i + 1, 1) if self.is_workday(self.BASE + timedelta(k)))
        while len(self.cum) <= i:
            j = len(self.cum)
            self.cum.append(self.cum[-1] + (1 if self.is_workday(self.BASE + timedelta(j)) else 0))
        return self.cum[i]

    def between(self, start: date, end: date) -> int:
        """Working days in (start, end], as calendar.domain.working_days_between."""
        return self.ordinal(end) - self.ordinal(start)


# --- the audit chain ----------------------------------------------------------------------


def committed_head(session: Session) -> tuple[int, str]:
    """The chain's head as this transaction sees it: (seq, hash) — (0, "") when empty.
    (Read through the audit service: what this transaction staged is chained first.)"""
    head = audit.head(session)
    return (0, "") if head is None else (head.seq, head.hash)


def checkpoint_covering(session: Session, seq: int) -> tuple[int, str] | None:
    """The newest signed checkpoint at or before `seq` (figures computed up to `seq`
    are covered by a checkpoint of that point or a later one)."""
    row = session.execute(
        select(audit_checkpoint.c.seq, audit_checkpoint.c.hash)
        .where(audit_checkpoint.c.seq <= seq)
        .order_by(audit_checkpoint.c.seq.desc())
        .limit(1)
    ).first()
    return None if row is None else (int(row[0]), str(row[1]))


class Entry:
    """An audit entry; its canonical JSON body is parsed only if the entry counts (most
    events of a case do not: a plain match on the one field that decides comes first)."""

    __slots__ = ("_body", "at", "kind", "raw", "seq", "subject")

    def __init__(self, seq: int, at: datetime, kind: str, subject: str, raw: str) -> None:
        self.seq, self.at, self.kind, self.subject, self.raw = seq, at, kind, subject, raw
        self._body: dict[str, Any] | None = None

    @property
    def body(self) -> dict[str, Any]:
        if self._body is None:
            self._body = json.loads(self.raw)
        return self._body

    def field(self, name: str) -> str | None:
        """A string field of the body (canonical JSON: `"name":"value"`, no spaces)."""
        pattern = _FIELDS.get(name)
        if pattern is None:
            pattern = _FIELDS[name] = re.compile(f'"{name}":"([^"\\\\]*)"')
        m = pattern.search(self.raw)
        return m.group(1) if m else None


_FIELDS: dict[str, re.Pattern[str]] = {}


def audit_batches(session: Session, after: int, upto: int, batch: int) -> Iterator[list[Entry]]:
    """The entries of AUDIT_KINDS in (after, upto], in order, `batch` at a time."""
    pos = after
    while pos < upto:
        rows = session.execute(
            select(
                audit_entry.c.seq,
                audit_entry.c.at,
                audit_entry.c.kind,
                audit_entry.c.subject,
                audit_entry.c.body,
            )
            .where(audit_entry.c.seq > pos, audit_entry.c.seq <= upto)
            .where(audit_entry.c.kind.in_(AUDIT_KINDS))
            .order_by(audit_entry.c.seq)
            .limit(batch)
        ).all()
        if not rows:
            return
        yield [Entry(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]
        pos = int(rows[-1][0])


def _subject_id(subject: str) -> uuid.UUID | None:
    _, _, raw = subject.partition(":")
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def _rows_by_id(session: Session, t: Any, key: Any, ids: Iterable[uuid.UUID]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    wanted = list(set(ids))
    for i in range(0, len(wanted), CHUNK):
        for r in session.execute(select(t).where(key.in_(wanted[i : i + CHUNK]))):
            out[r._mapping[key.name]] = r
    return out


def _event_day(e: Entry) -> date:
    raw = e.field("at")
    if raw:
        try:
            return local_day(datetime.fromisoformat(raw))
        except ValueError:
            pass
    return local_day(e.at)


def audit_facts(
    session: Session, entries: Sequence[Entry], owns: Owns, wd: WorkingDays
) -> list[Fact]:
    """The facts of a batch of audit entries (events of records this node owns only)."""
    by_kind: dict[str, list[Entry]] = {}
    for e in entries:
        by_kind.setdefault(e.kind, []).append(e)
    facts: list[Fact] = []
    facts += _case_facts(session, by_kind.get("case.event", []), owns, wd)
    facts += _ticket_facts(session, by_kind.get("ticket.event", []), owns)
    facts += _evidence_facts(by_kind.get("evidence.access", []), owns)
    facts += _settlement_facts(session, by_kind.get("medical.settlement.event", []), owns)
    return facts


_CASE_EVENTS = {
    "submit": Indicator.CASE_RECEIVED,
    "approve": Indicator.CASE_DECIDED,
    "deny": Indicator.CASE_DECIDED,
    "deliver": Indicator.CASE_DELIVERED,
    "refuse": Indicator.CASE_REFUSED,
    "rate": Indicator.CASE_RATING,
}


def _case_facts(session: Session, entries: list[Entry], owns: Owns, wd: WorkingDays) -> list[Fact]:
    wanted = []
    for e in entries:
        act = e.field("action")
        if act in _CASE_EVENTS:
            wanted.append((e, act, _subject_id(e.subject)))
    cases = _rows_by_id(session, service_case, service_case.c.id, [i for _, _, i in wanted if i])
    rated = [i for _, act, i in wanted if i and act == "rate"]
    scores = {
        r.case_id: r.score for r in _rows_by_id(session, rating, rating.c.case_id, rated).values()
    }
    facts: list[Fact] = []
    for e, act, cid in wanted:
        c = cases.get(cid)
        if c is None or not owns(c.competent_jurisdiction):
            continue
        ind = _CASE_EVENTS[str(act)]
        day = _event_day(e)
        category = case_mode(c.mode, c.channel)
        if ind is Indicator.CASE_RATING:
            category = str(scores.get(cid, ""))
            if not category:
                continue
        key = Key(
            ind,
            day,
            c.receiving_city or "",
            c.competent_city or "",
            c.competent_jurisdiction,
            category,
            c.authority_name or "",
            c.matter_code or "",
        )
        if ind is Indicator.CASE_DECIDED:
            start = local_day(c.accepted_at or c.submitted_at)
            days = wd.between(start, day)
            facts.append(Fact(key, total=int(days <= c.time_limit_days), days=days))
        else:
            facts.append(Fact(key))
    return facts


def _ticket_facts(session: Session, entries: list[Entry], owns: Owns) -> list[Fact]:
    targets = {"closed": Indicator.TICKET_CLOSED, "reopened": Indicator.TICKET_REOPENED}
    wanted = [(e, _subject_id(e.subject)) for e in entries if e.field("to_state") in targets]
    tickets = _rows_by_id(session, ticket, ticket.c.id, [i for _, i in wanted if i])
    facts: list[Fact] = []
    for e, tid in wanted:
        t = tickets.get(tid)
        if t is None or t.replica or not owns(t.jurisdiction_code):
            continue
        ind = targets[str(e.field("to_state"))]
        key = Key(
            ind,
            _event_day(e),
            t.city_code,
            t.city_code,
            t.jurisdiction_code,
            "joint" if t.joint else "single",
            t.authority_name or "",
            t.category_code or "",
        )
        on_time = ind is Indicator.TICKET_CLOSED and bool(t.on_time)
        facts.append(Fact(key, total=int(on_time)))
    return facts


def _evidence_facts(entries: list[Entry], owns: Owns) -> list[Fact]:
    facts: list[Fact] = []
    for e in entries:
        b = e.body
        provider = str(b.get("provider_jurisdiction") or "")
        if b.get("source", "provider") != "provider" or not owns(provider):
            continue
        key = Key(
            Indicator.EVIDENCE,
            _event_day(e),
            "",
            "",
            provider,
            str(b.get("outcome") or ""),
            str(b.get("requester_authority_code") or "")[:80],
            str(b.get("kind") or "")[:120],
        )
        facts.append(Fact(key))
    return facts


def _settlement_facts(session: Session, entries: list[Entry], owns: Owns) -> list[Fact]:
    targets = {"settled": Indicator.SETTLEMENT, "reversed": Indicator.SETTLEMENT_REVERSED}
    wanted = [(e, _subject_id(e.subject)) for e in entries if e.field("to_state") in targets]
    rows = _rows_by_id(session, settlement, settlement.c.id, [i for _, i in wanted if i])
    facts: list[Fact] = []
    for e, sid in wanted:
        s = rows.get(sid)
        if s is None or not owns(s.treatment_jurisdiction):
            continue
        ind = targets[str(e.field("to_state"))]
        key = Key(ind, _event_day(e), s.insured_city, s.treatment_city, s.treatment_jurisdiction)
        fund = int(s.fund) if ind is Indicator.SETTLEMENT else 0
        facts.append(Fact(key, total=int(s.total), extra=fund))
    return facts


# --- tables read by time -------------------------------------------------------------------


@dataclass(frozen=True)
class Mark:
    at: datetime | None
    id: str


def _by_time(
    session: Session, t: Any, at_col: Any, mark: Mark, until: datetime, batch: int
) -> Iterator[list[Any]]:
    """Rows with (at, id) after `mark` and at ≤ `until`, in that order."""
    at, last = mark.at, mark.id
    while True:
        q = select(t).where(at_col <= until)
        if at is not None:
            q = q.where(
                tuple_(at_col, t.c.id) > tuple_(at, uuid.UUID(last)) if last else at_col > at
            )
        rows = list(session.execute(q.order_by(at_col, t.c.id).limit(batch)).all())
        if not rows:
            return
        yield rows
        tail = rows[-1]._mapping
        at, last = tail[at_col.name], str(tail["id"])


def licence_facts(session: Session, rows: Sequence[Any], owns: Owns) -> list[Fact]:
    cases = _rows_by_id(session, service_case, service_case.c.id, [r.case_id for r in rows])
    facts: list[Fact] = []
    for r in rows:
        c = cases.get(r.case_id)
        if c is not None and not owns(c.competent_jurisdiction):
            continue
        key = Key(
            Indicator.LICENCE_VERIFIED,
            local_day(r.verified_at),
            (c.receiving_city or "") if c else "",
            (c.competent_city or "") if c else "",
            c.competent_jurisdiction if c else "",
            r.result[:40],
            (c.authority_name or "") if c else "",
            r.type_code[:120],
        )
        facts.append(Fact(key))
    return facts


def card_facts(rows: Sequence[Any], owns: Owns, city_jurisdiction: dict[str, str]) -> list[Fact]:
    facts: list[Fact] = []
    for r in rows:
        venue_j = city_jurisdiction.get(r.venue_city, "")
        if not owns(venue_j):
            continue  # forwarded to the card's node: counted by the gate's node
        category = "admitted" if r.admitted else (r.reason or "refused")
        key = Key(
            Indicator.CARD_USE,
            local_day(r.used_at),
            "",
            r.venue_city,
            venue_j,
            category[:40],
            "",
            (r.card_jurisdiction or "")[:120],
        )
        facts.append(Fact(key))
    return facts


def city_jurisdictions(session: Session) -> dict[str, str]:
    return {r[0]: r[1] for r in session.execute(select(city.c.code, city.c.jurisdiction_code))}


def working_days(session: Session) -> WorkingDays:
    return WorkingDays(calendar.workday_predicate(session))
