"""Where the dashboard's events come from: read-only queries over the tables the other
contexts already write, turned into facts on the stage (cells.STAGE) or in memory
(domain.Fact).

Audited events (cases, work orders, evidence, settlements) are read from the audit
chain: its `seq` is gap-free and grows in commit order (entries are chained under the
head's lock at commit), so "every entry after the watermark up to the committed head"
is exactly the new events — a refresh after N events reads N entries, never the past.
Each entry names its record (`case:<id>`); one INSERT … SELECT per kind of record joins
a batch of entries to the records they name (by primary key), to the working-day
ordinals (for handling times) and groups them by cell key and histogram bucket — no
Python per event.

Two record types are not in the chain (免提交 licence verifications, card uses): they are
read by time and id after a settling lag (a row committed later than that after its
own time would be missed; both are written in the transaction that stamps them).

These are lightweight table clauses (`sqlalchemy.table`), not the contexts' ORM
classes: the dashboard reads, never writes, and depends on no other context's code."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ColumnElement,
    Date,
    Float,
    Integer,
    Select,
    String,
    Table,
    Uuid,
    and_,
    case,
    column,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    table,
    true,
    tuple_,
    union_all,
)
from sqlalchemy import cast as sa_cast
from sqlalchemy.orm import Session

from tongban.audit import service as audit
from tongban.calendar import service as calendar
from tongban.dashboard import cellkey, cells
from tongban.dashboard.domain import DIMENSIONS, HIST_CAP, Fact, Indicator, Key, Scope
from tongban.dashboard.models import DashEntry, DashWorkday
from tongban.db import UTCDateTime

AUDIT_KINDS = ("case.event", "ticket.event", "evidence.access", "medical.settlement.event")

audit_entry = table(
    "audit_entry",
    column("seq", Integer),
    column("at", UTCDateTime),
    column("kind", String),
    column("subject", String),
    column("body", String),
    column("hash", String),
    # Typed copies of the body's fields and the subject's uuid (migration 0058).
    column("action", String),
    column("to_state", String),
    column("occurred_at", UTCDateTime),
    column("subject_id", Uuid),
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
rating = table(
    "rating", column("case_id", Uuid), column("score", Integer), column("created_at", UTCDateTime)
)
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
clearing_run = table(
    "med_clearing_run",
    column("id", Uuid),
    column("period", String),
    column("status", String),
    column("closed_at", UTCDateTime),
)
clearing_gross = table(
    "med_clearing_gross",
    column("run_id", Uuid),
    column("level", String),
    column("debtor", String),
    column("creditor", String),
    column("claims", Integer),
    column("amount", Integer),
)
city = table("city", column("code", String), column("jurisdiction_code", String))
workday = cast(Table, DashWorkday.__table__)
entry = cast(Table, DashEntry.__table__)

Owns = Callable[[str], bool]
CHUNK = 900  # ids per IN (…) list: under SQLite's variable limit


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


class Sql:
    """The few expressions that differ between SQLite and PostgreSQL."""

    def __init__(self, session: Session) -> None:
        self.pg = cells.dialect(session) == "postgresql"

    def field(self, body: Any, name: str) -> ColumnElement[Any]:
        """A top-level field of a JSON text column, as text."""
        if self.pg:
            return cast(ColumnElement[Any], sa_cast(body, JSON)[name].as_string())
        return cast(ColumnElement[Any], func.json_extract(body, f"$.{name}"))

    def local_date(self, moment: Any) -> ColumnElement[Any]:
        """The Beijing date of a UTC timestamp column (UTC+8: no daylight saving)."""
        if self.pg:
            return sa_cast(func.timezone("Asia/Shanghai", moment), Date)
        return cast(ColumnElement[Any], func.date(moment, "+8 hours"))


def _owned(col: Any, owns: Scope) -> ColumnElement[bool]:
    codes = owns.codes()
    if codes is None:
        return true()
    return or_(col.is_(None), col == "", col.in_(sorted(codes)))


def _s(col: Any) -> ColumnElement[Any]:
    return func.coalesce(col, "")


def _event_day(x: Sql) -> ColumnElement[Any]:
    """The Beijing day of an entry's event: its body's `at` (the typed `occurred_at`,
    migration 0058), else the time it was chained."""
    e = audit_entry
    return x.local_date(func.coalesce(e.c.occurred_at, e.c.at))


_CASE_EVENTS = {
    "submit": Indicator.CASE_RECEIVED,
    "approve": Indicator.CASE_DECIDED,
    "deny": Indicator.CASE_DECIDED,
    "deliver": Indicator.CASE_DELIVERED,
    "refuse": Indicator.CASE_REFUSED,
    "rate": Indicator.CASE_RATING,
}


def _cases(x: Sql, owns: Scope, entry: Any) -> Select[Any]:
    """One row per counted case event: its key, histogram bucket and on-time flag."""
    e, c = entry, service_case
    action, day = e.c.action, e.c.day
    w1, w2 = workday.alias("w1"), workday.alias("w2")
    start = x.local_date(func.coalesce(c.c.accepted_at, c.c.submitted_at))
    days = w2.c.ordinal - w1.c.ordinal
    decided = action.in_(("approve", "deny"))
    mode = case(
        (or_(c.c.mode == "virtual", c.c.channel == "virtual"), "virtual"),
        (c.c.mode == "joint", "joint"),
        (or_(c.c.mode == "proxy", c.c.channel == "window"), "window"),
        else_="online",
    )
    return (
        select(
            case(*((action == a, literal(str(i))) for a, i in _CASE_EVENTS.items())).label(
                "indicator"
            ),
            day.label("day"),
            _s(c.c.receiving_city).label("from_city"),
            _s(c.c.competent_city).label("to_city"),
            _s(c.c.competent_jurisdiction).label("jurisdiction"),
            case((action == "rate", sa_cast(rating.c.score, String)), else_=mode).label("category"),
            _s(c.c.authority_name).label("authority"),
            _s(c.c.matter_code).label("matter"),
            case((~decided, None), (days < 0, 0), (days > HIST_CAP, HIST_CAP), else_=days).label(
                "bucket"
            ),
            case((and_(decided, days <= c.c.time_limit_days), 1), else_=0).label("total"),
            literal(0).label("extra"),
            e.c.seq.label("seq"),
        )
        .select_from(
            e.join(c, c.c.id == e.c.rid)
            .outerjoin(rating, and_(action == "rate", rating.c.case_id == c.c.id))
            .outerjoin(w1, w1.c.day == start)
            .outerjoin(w2, w2.c.day == day)
        )
        .where(e.c.kind == "case.event", action.in_(list(_CASE_EVENTS)))
        .where(or_(action != "rate", rating.c.score.is_not(None)))
        .where(_owned(c.c.competent_jurisdiction, owns))
    )


#: The steps of the 差评整改 loop (case events, cases.domain.RectAction) → category.
_RECT_STEPS = {
    "rectification_reply": "replied",
    "rectification_accepted": "resolved",
    "rectification_reopened": "reopened",
    "rectification_escalated": "escalated",
}
#: Ratings that open a rectification item (cases.domain.rating_opens_rectification).
RECT_SCORE_MAX = 2


def _rectifications(x: Sql, owns: Scope, entry: Any) -> Select[Any]:
    """One row per step of a 差评整改 loop: the poor rating that opens it (RECT_OPENED, by
    score), then (RECT_STEP) the authority's reply, the applicant's 已解决 / 未解决 / escalation. A "resolved" step
    carries the working days from the rating (its record's time) to that step."""
    e, c = entry, service_case
    action, day = e.c.action, e.c.day
    w1, w2 = workday.alias("w1"), workday.alias("w2")
    resolved = action == "rectification_accepted"
    days = w2.c.ordinal - w1.c.ordinal
    return (
        select(
            case(
                (action == "rate", literal(str(Indicator.RECT_OPENED))),
                else_=literal(str(Indicator.RECT_STEP)),
            ).label("indicator"),
            day.label("day"),
            _s(c.c.receiving_city).label("from_city"),
            _s(c.c.competent_city).label("to_city"),
            _s(c.c.competent_jurisdiction).label("jurisdiction"),
            case(
                *((action == a, literal(k)) for a, k in _RECT_STEPS.items()),
                else_=sa_cast(rating.c.score, String),
            ).label("category"),
            _s(c.c.authority_name).label("authority"),
            _s(c.c.matter_code).label("matter"),
            case(
                (~resolved, None),
                (w1.c.ordinal.is_(None), None),
                (days < 0, 0),
                (days > HIST_CAP, HIST_CAP),
                else_=days,
            ).label("bucket"),
            literal(0).label("total"),
            literal(0).label("extra"),
            e.c.seq.label("seq"),
        )
        .select_from(
            e.join(c, c.c.id == e.c.rid)
            .outerjoin(rating, rating.c.case_id == c.c.id)
            .outerjoin(w1, and_(resolved, w1.c.day == x.local_date(rating.c.created_at)))
            .outerjoin(w2, and_(resolved, w2.c.day == day))
        )
        .where(e.c.kind == "case.event", action.in_(["rate", *_RECT_STEPS]))
        .where(or_(action != "rate", rating.c.score <= RECT_SCORE_MAX))
        .where(_owned(c.c.competent_jurisdiction, owns))
    )


def _tickets(x: Sql, owns: Scope, entry: Any) -> Select[Any]:
    e, t = entry, ticket
    to = e.c.to_state
    return (
        select(
            case(
                (to == "closed", literal(str(Indicator.TICKET_CLOSED))),
                else_=literal(str(Indicator.TICKET_REOPENED)),
            ).label("indicator"),
            e.c.day.label("day"),
            _s(t.c.city_code).label("from_city"),
            _s(t.c.city_code).label("to_city"),
            _s(t.c.jurisdiction_code).label("jurisdiction"),
            case((t.c.joint.is_(True), "joint"), else_="single").label("category"),
            _s(t.c.authority_name).label("authority"),
            _s(t.c.category_code).label("matter"),
            literal(None, Integer).label("bucket"),
            case((and_(to == "closed", t.c.on_time.is_(True)), 1), else_=0).label("total"),
            literal(0).label("extra"),
            e.c.seq.label("seq"),
        )
        .select_from(e.join(t, t.c.id == e.c.rid))
        .where(e.c.kind == "ticket.event", to.in_(("closed", "reopened")))
        .where(t.c.replica.is_not(True), _owned(t.c.jurisdiction_code, owns))
    )


def _ticket_ratings(x: Sql, owns: Scope, entry: Any) -> Select[Any]:
    """The resident's verdict on a fixed work order (满意 closes it, 不满意 reopens it)."""
    e, t = entry, ticket
    action = e.c.action
    return (
        select(
            literal(str(Indicator.TICKET_SATISFACTION)).label("indicator"),
            e.c.day.label("day"),
            _s(t.c.city_code).label("from_city"),
            _s(t.c.city_code).label("to_city"),
            _s(t.c.jurisdiction_code).label("jurisdiction"),
            action.label("category"),
            _s(t.c.authority_name).label("authority"),
            _s(t.c.category_code).label("matter"),
            literal(None, Integer).label("bucket"),
            case((action == "satisfied", 1), else_=0).label("total"),
            literal(0).label("extra"),
            e.c.seq.label("seq"),
        )
        .select_from(e.join(t, t.c.id == e.c.rid))
        .where(e.c.kind == "ticket.event", action.in_(("satisfied", "unsatisfied")))
        .where(t.c.replica.is_not(True), _owned(t.c.jurisdiction_code, owns))
    )


def _evidence(x: Sql, owns: Scope, entry: Any) -> Select[Any]:
    e = audit_entry
    provider = _s(x.field(e.c.body, "provider_jurisdiction"))
    return (
        select(
            literal(str(Indicator.EVIDENCE)).label("indicator"),
            _event_day(x).label("day"),
            literal("").label("from_city"),
            literal("").label("to_city"),
            provider.label("jurisdiction"),
            _s(x.field(e.c.body, "outcome")).label("category"),
            func.substr(_s(x.field(e.c.body, "requester_authority_code")), 1, 80).label(
                "authority"
            ),
            func.substr(_s(x.field(e.c.body, "kind")), 1, 120).label("matter"),
            literal(None, Integer).label("bucket"),
            literal(0).label("total"),
            literal(0).label("extra"),
            e.c.seq.label("seq"),
        )
        .where(e.c.kind == "evidence.access", _owned(provider, owns))
        .where(func.coalesce(x.field(e.c.body, "source"), "provider") == "provider")
    )


def _settlements(x: Sql, owns: Scope, entry: Any) -> Select[Any]:
    e, m = entry, settlement
    to = e.c.to_state
    settled = to == "settled"
    return (
        select(
            case(
                (settled, literal(str(Indicator.SETTLEMENT))),
                else_=literal(str(Indicator.SETTLEMENT_REVERSED)),
            ).label("indicator"),
            e.c.day.label("day"),
            _s(m.c.insured_city).label("from_city"),
            _s(m.c.treatment_city).label("to_city"),
            _s(m.c.treatment_jurisdiction).label("jurisdiction"),
            literal("").label("category"),
            literal("").label("authority"),
            literal("").label("matter"),
            literal(None, Integer).label("bucket"),
            func.coalesce(m.c.total, 0).label("total"),
            case((settled, func.coalesce(m.c.fund, 0)), else_=0).label("extra"),
            e.c.seq.label("seq"),
        )
        .select_from(e.join(m, m.c.id == e.c.rid))
        .where(e.c.kind == "medical.settlement.event", to.in_(("settled", "reversed")))
        .where(_owned(m.c.treatment_jurisdiction, owns))
    )


#: The kinds of chain entries read through dash_entry: their record's prefix in the
#: entry's subject, and the actions / target states the facts are made of.
_RECORDS = {
    "case.event": "case",
    "ticket.event": "ticket",
    "medical.settlement.event": "settlement",
}
_ACTIONS = sorted({*_CASE_EVENTS, *_RECT_STEPS, "satisfied", "unsatisfied"})
_STATES = sorted({"closed", "reopened", "settled", "reversed"})


def _rid(x: Sql) -> ColumnElement[Any]:
    """The record an entry of a kind read through its record names: the subject's uuid
    (the typed `subject_id`, set only for the canonical "<type>:<uuid>" form) when the
    subject's type is the kind's record (`_RECORDS`), else NULL."""
    e = audit_entry
    return case(
        *(
            (
                and_(e.c.kind == kind, func.substr(e.c.subject, 1, len(p) + 1) == f"{p}:"),
                e.c.subject_id,
            )
            for kind, p in _RECORDS.items()
        ),
        else_=None,
    )


def _entries(x: Sql, span: ColumnElement[bool]) -> Select[Any]:
    """The entries of `span` the facts are made of, with the record each names, its
    action or target state and its Beijing day: from the chain's typed columns (migration
    0058: filled by its writers from the body and subject, `audit.domain.typed_fields`),
    so no JSON body is parsed and no subject cast."""
    e = audit_entry
    day = x.local_date(func.coalesce(e.c.occurred_at, e.c.at))
    return (
        select(
            e.c.seq,
            e.c.kind,
            _rid(x).label("rid"),
            e.c.action.label("action"),
            e.c.to_state.label("to_state"),
            day.label("day"),
        )
        .where(span, e.c.kind.in_(list(_RECORDS)))
        .where(or_(e.c.action.in_(_ACTIONS), e.c.to_state.in_(_STATES)))
    )


def _read_entries(session: Session, x: Sql, span: ColumnElement[bool]) -> Any:
    """The entries of `span` the facts are made of (`_entries`), where the facts read
    them: on SQLite copied to dash_entry; on PostgreSQL not copied at all — the facts'
    statement reads the chain's typed columns as a subquery, on parallel workers (since
    session 15: until then the bodies were parsed into a scratch table first,
    docs/dashboard.md "Session 15")."""
    q = _entries(x, span)
    if x.pg:
        return q.subquery("entries")
    cols = ["seq", "kind", "rid", "action", "to_state", "day"]
    session.execute(insert(entry).from_select(cols, q))
    return entry


#: Each kind of fact the chain's entries make: (builder, the kind of entry it reads,
#: whether it reads the chain itself rather than dash_entry).
_FACTS = (
    (_cases, "case.event", False),
    (_rectifications, "case.event", False),
    (_tickets, "ticket.event", False),
    (_ticket_ratings, "ticket.event", False),
    (_evidence, "evidence.access", True),
    (_settlements, "medical.settlement.event", False),
)


def _staged(x: Sql, sub: Any, keys: cellkey.Keys) -> Select[Any]:
    """The rows a kind's facts put on the stage: one row per fact (n = 1, the fact's total
    and extra, hn = 1 when it has a bucket). The fold groups the stage by key again
    (cells.fold_stage), so grouping here too only paid when keys repeat within a slice:
    at the bench's 1,000,000 case events 428,572 facts made 428,568 grouped rows on SQLite
    (the read side −1.3 to −1.9 s of CPU, the whole refresh −0.15 to −1.9 s in six pairs,
    docs/dashboard.md "Session 13: reading the chain"), and on PostgreSQL, where the
    facts' join now runs on parallel workers into a scratch stage (cells.Stage), the
    grouping would run in the leader alone ("Session 14"). On PostgreSQL the sums are
    bigint, as the stage's columns (a scratch table takes its columns' types from this
    SELECT; in-memory cells, such as clearing balances, are added to it after)."""
    dims = [sub.c[d] for d in (*DIMENSIONS, "bucket")]
    hist = case((sub.c.bucket.is_not(None), 1), else_=0)
    ckey = cellkey.chain_key(keys, sub.c.seq, x.pg)
    sums: list[Any] = [literal(1), sub.c.total, sub.c.extra, ckey, hist]
    if x.pg:
        sums = [sa_cast(v, BigInteger) for v in sums]
    names = ("n", "total", "extra", "ckey", "hn")
    return select(*dims, *(v.label(c) for v, c in zip(sums, names, strict=True)))


#: When autovacuum ANALYZEs a table: after 50 rows + 10 % of those its statistics know
#: of have changed (autovacuum_analyze_threshold / _scale_factor's defaults).
_STALE_ROWS, _STALE_SHARE = 50, 0.1


def _chain_rows_known(session: Session) -> float:
    """How many entries the chain's statistics know of (PostgreSQL's reltuples)."""
    known = session.scalar(
        select(func.greatest(column("reltuples", Float), 0))
        .select_from(table("pg_class"))
        .where(column("oid") == func.to_regclass(audit_entry.name))
    )
    return float(known or 0)


def _chain_statistics(session: Session, x: Sql, after: int, upto: int) -> None:
    """PostgreSQL: ANALYZE the chain before a large refresh's span of it (at least
    cells.ANALYZE_AFTER positions) when its statistics are older than autovacuum lets
    them get: the chain holds at least `upto` entries (its seq is gap-free from 1), more
    than 50 + 10 % beyond those they know of. A chain that grew by a bulk of entries
    since its last ANALYZE — the bench's million, a backlog — is otherwise planned on its
    old size: the bench's copy of a million entries was estimated at 25 rows and planned
    as one process's bitmap scan, with no parallel workers (docs/dashboard.md, "Session
    14: the second core"). The periodic refresh's spans are far smaller: no ANALYZE."""
    if not x.pg or upto - after < cells.ANALYZE_AFTER:
        return
    known = _chain_rows_known(session)
    if upto - known > _STALE_ROWS + _STALE_SHARE * known:
        cells.analyze(session, audit_entry)


def stage_audit(
    session: Session,
    after: int,
    upto: int,
    owns: Scope,
    stage: cells.Stage,
    keys: cellkey.Keys,
) -> int:
    """Put the facts of the chain entries in (after, upto] on `stage` (one row per fact,
    see _staged): the entries' typed columns (migration 0058) copied to dash_entry on
    SQLite, read in the facts' statement itself on PostgreSQL (`_read_entries`), then the
    facts of each kind whose kind of entry the span holds (counted
    first, by the chain's (kind, seq) index) — one INSERT … SELECT per kind on SQLite, on
    PostgreSQL one statement for all of them (a UNION ALL, on parallel workers when it
    makes the scratch stage); how many entries of the kinds the dashboard reads there
    were."""
    x = Sql(session)
    e = audit_entry
    span = and_(e.c.seq > after, e.c.seq <= upto)
    _chain_statistics(session, x, after, upto)
    held = {
        str(k): int(n)
        for k, n in session.execute(
            select(e.c.kind, func.count()).where(span, e.c.kind.in_(AUDIT_KINDS)).group_by(e.c.kind)
        )
    }
    if not held:
        return 0
    cells.tune(session)
    copied = any(kind in held for kind in _RECORDS)
    entries: Any = entry
    if copied:
        entries = _read_entries(session, x, span)
    facts = []
    for build, kind, chain in _FACTS:
        if kind not in held:
            continue
        f = build(x, owns, entries)
        facts.append(_staged(x, (f.where(span) if chain else f).subquery("f"), keys))
    if x.pg:
        stage.put(session, facts[0] if len(facts) == 1 else union_all(*facts))
    else:
        for q in facts:
            stage.put(session, q)
    if entries is entry and copied:
        session.execute(delete(entry))
    return sum(held.values())


def fill_workdays(session: Session, wd: WorkingDays, until: date) -> None:
    """Write the working-day ordinals from WorkingDays.BASE to `until` (the calendar's
    overrides may have changed since the last refresh: written whole each time)."""
    session.execute(delete(workday))
    rows = []
    d = WorkingDays.BASE
    while d <= until:
        rows.append({"day": d, "ordinal": wd.ordinal(d)})
        d += timedelta(days=1)
    session.execute(insert(workday), rows)


def _rows_by_id(session: Session, t: Any, key: Any, ids: Iterable[uuid.UUID]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    wanted = list(set(ids))
    for i in range(0, len(wanted), CHUNK):
        for r in session.execute(select(t).where(key.in_(wanted[i : i + CHUNK]))):
            out[r._mapping[key.name]] = r
    return out


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


def licence_facts(
    session: Session, rows: Sequence[Any], owns: Owns, keys: cellkey.Keys
) -> list[Fact]:
    cases = _rows_by_id(session, service_case, service_case.c.id, [r.case_id for r in rows])
    facts: list[Fact] = []
    for r in rows:
        c = cases.get(r.case_id)
        if c is not None and not owns(c.competent_jurisdiction):
            continue
        key = Key(
            Indicator.LICENCE_VERIFIED,
            calendar.local_date(r.verified_at),
            (c.receiving_city or "") if c else "",
            (c.competent_city or "") if c else "",
            c.competent_jurisdiction if c else "",
            r.result[:40],
            (c.authority_name or "") if c else "",
            r.type_code[:120],
        )
        facts.append(Fact(key, ckey=keys.event(f"licence_use:{r.id}")))
    return facts


def card_facts(
    rows: Sequence[Any], owns: Owns, city_jurisdiction: dict[str, str], keys: cellkey.Keys
) -> list[Fact]:
    facts: list[Fact] = []
    for r in rows:
        venue_j = city_jurisdiction.get(r.venue_city, "")
        if not owns(venue_j):
            continue  # forwarded to the card's node: counted by the gate's node
        category = "admitted" if r.admitted else (r.reason or "refused")
        key = Key(
            Indicator.CARD_USE,
            calendar.local_date(r.used_at),
            "",
            r.venue_city,
            venue_j,
            category[:40],
            "",
            (r.card_jurisdiction or "")[:120],
        )
        facts.append(Fact(key, ckey=keys.event(f"card_use:{r.id}")))
    return facts


def period_day(period: str) -> date:
    """The first day of a clearing period ("YYYY-MM"): the day its cells are filed under."""
    year, month = period.split("-")
    return date(int(year), int(month), 1)


def clearing_facts(
    session: Session,
    runs: Sequence[Any],
    owns: Owns,
    city_jurisdiction: dict[str, str],
    keys: cellkey.Keys,
) -> list[Fact]:
    """The balances of closed clearing periods: per (insured city → treatment city), the
    claims (net of reversals, as a magnitude) and the fund amount the insured side owes (`total`), and
    what it owes after netting with the opposite direction (`extra`; negative: it is
    owed). From the run's city-level gross matrix, which a closed run never changes; a
    node counts the pairs whose treatment (creditor) side it serves, as settlements."""
    ids = [r.id for r in runs if r.status == "closed"]
    periods = {r.id: period_day(r.period) for r in runs}
    g = clearing_gross
    gross: dict[Any, dict[tuple[str, str], tuple[int, int]]] = {}
    for i in range(0, len(ids), CHUNK):
        q = select(g.c.run_id, g.c.debtor, g.c.creditor, g.c.claims, g.c.amount).where(
            g.c.run_id.in_(ids[i : i + CHUNK]), g.c.level == "city"
        )
        for run_id, debtor, creditor, claims, amount in session.execute(q):
            gross.setdefault(run_id, {})[(debtor, creditor)] = (int(claims), int(amount))
    facts: list[Fact] = []
    for run_id, pairs in gross.items():
        for (debtor, creditor), (claims, amount) in sorted(pairs.items()):
            j = city_jurisdiction.get(creditor, "")
            if not owns(j):
                continue
            back = pairs.get((creditor, debtor), (0, 0))[1]
            key = Key(Indicator.CLEARING, periods[run_id], debtor, creditor, j)
            # `n` is what the small-cell rule looks at: how many claims the amount rests
            # on, never below 1 when there is an amount (reversals may outnumber claims,
            # or offset them to 0 with an amount left).
            n = abs(claims) or (1 if amount else 0)
            ckey = keys.event(f"clearing_run:{run_id}:{debtor}:{creditor}")
            facts.append(Fact(key, n=n, total=amount, extra=amount - back, ckey=ckey))
    return facts


def city_jurisdictions(session: Session) -> dict[str, str]:
    return {r[0]: r[1] for r in session.execute(select(city.c.code, city.c.jurisdiction_code))}


def working_days(session: Session) -> WorkingDays:
    return WorkingDays(calendar.workday_predicate(session))
