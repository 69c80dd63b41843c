"""The clearing tally: per period and city pair, the partial sums of the treatment side's
claims (claim and reversal line counts, the fund's sum in fen), folded incrementally, so
that clearing a period reads ≤ cities² rows instead of scanning the month's settlements
(issue 14).

What is folded, and from where. The audit chain's `seq` is gap-free and grows in commit
order (entries are chained under the head row's lock at commit), so "every entry after
the watermark up to the committed head" is exactly what committed since the last fold,
and a row committing later gets a later position: a fold never skips it. A settlement's
creation (kind `medical.settlement`, its body carries the period it was settled in) adds
a claim line; its reversal (`medical.settlement.event` to `reversed`; the event's
payload carries the claim's period as reversed and the reversal's period) either drops
the claim from that period (reversed within it) or adds a reversal line to the later
period. A carry between periods (`clearing_exchange.move_lines`) adds its move here in
its own transaction (`moved`): it has no per-settlement chain entry. Sums commute, so
the order in which folds and carries land does not matter, only that each is counted
once: the fold advances the watermark in the transaction that adds the sums.

The settlement's own transaction never touches the tally (no hot row on the write
path): a job folds the tail (`fold`) and the clearing command folds it before reading.
The first fold builds the tally from the settlements themselves (`rebuild`), holding the
audit head (nothing is chained meanwhile) and leaving out, in the same statement, the
entries committed but not yet chained (they are sealed after their commit and will be
folded after the head).

The direct GROUP BY over the claims (`claim_lines.settlement_lines`) stays the reference:
`clearing_service.load_aggregate(rescan=True)`, the closing recomputation and the
tests compare with it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import polars as pl
from sqlalchemy import (
    BigInteger,
    Select,
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy import cast as sa_cast
from sqlalchemy.dialects.postgresql import JSON
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement, column, table

from tongban.audit import service as audit
from tongban.db import utcnow
from tongban.medical import clearing
from tongban.medical.domain import SettlementState
from tongban.medical.models import (
    ClearingTally,
    ClearingTallyMark,
    Settlement,
    SettlementEvent,
)

MARK_ID = 1
#: Chain positions folded per statement.
BATCH = 1_000_000
_KEYS = ("insured_j", "treatment_j", "insured_city", "treatment_city")

audit_entry = table("audit_entry", column("seq"), column("kind"), column("subject"), column("body"))
#: Entries committed with their records and not chained yet (sealed after the commit).
audit_pending = table("audit_pending", column("kind"), column("subject"), column("body"))


@dataclass(frozen=True)
class Folded:
    """What a fold did: the chain position it reached, the entries it read, whether it
    built the tally from the rows, how long it took."""

    position: int
    entries: int
    rebuilt: bool = False
    seconds: float = 0.0


def _pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _field(session: Session, body: Any, name: str) -> ColumnElement[Any]:
    """A top-level field of a JSON text column, as text."""
    if _pg(session):
        field: ColumnElement[Any] = sa_cast(body, JSON)[name].as_string()
        return field
    return func.json_extract(body, f"$.{name}")


_BODY = {
    "period": String,
    "insured_jurisdiction": String,
    "treatment_jurisdiction": String,
    "insured_city": String,
    "treatment_city": String,
    "fund": BigInteger,
}


def _body(session: Session, e: Any) -> tuple[Any, Callable[[str], ColumnElement[Any]]]:
    """The entries of `e` with what the tally reads of a settlement's body."""
    return audit.entry_body_fields(_pg(session), e, _BODY)


def _names_settlement(session: Session, subject: Any) -> ColumnElement[bool]:
    """`subject` ("settlement:<uuid>") names the settlement row."""
    # Unchecked guard: the entries of these kinds are written by the settlement's mapper.
    return Settlement.id == audit.subject_record_id(
        _pg(session), subject, "settlement", checked=False
    )


def _geo() -> list[Any]:
    S = Settlement
    return [
        S.insured_jurisdiction.label("insured_j"),
        S.treatment_jurisdiction.label("treatment_j"),
        S.insured_city.label("insured_city"),
        S.treatment_city.label("treatment_city"),
    ]


def _upsert(session: Session, lines: Select[Any]) -> None:
    """Add the lines (period, keys, claims, reversals, amount), grouped, to the tally."""
    session.execute(_upsert_statement(session, lines))


def _upsert_statement(session: Session, lines: Select[Any]) -> Any:
    """The statement adding the lines, grouped, to the tally."""
    sub = lines.subquery()
    keys = [sub.c.period, *(sub.c[k] for k in _KEYS)]
    grouped = (
        select(
            *keys,
            func.sum(sub.c.claims).label("claims"),
            func.sum(sub.c.reversals).label("reversals"),
            func.sum(sub.c.amount).label("amount"),
        )
        .where(true())  # SQLite: an INSERT … SELECT with ON CONFLICT needs a WHERE
        .group_by(*keys)
    )
    cols = ["period", *_KEYS, "claims", "reversals", "amount"]
    # (the table, not the class: an ORM insert given parameters is a bulk insert)
    ins = (pg_insert if _pg(session) else sqlite_insert)(cast(Table, ClearingTally.__table__))
    stmt = ins.from_select(cols, grouped)
    t = ClearingTally.__table__.c
    stmt = stmt.on_conflict_do_update(
        index_elements=["period", *_KEYS],
        set_={
            "claims": t.claims + stmt.excluded.claims,
            "reversals": t.reversals + stmt.excluded.reversals,
            "amount": t.amount + stmt.excluded.amount,
        },
    )
    return stmt


_SORT_OFF = text(
    "SELECT current_setting('enable_sort') AS was, set_config('enable_sort', 'off', true)"
)
_SORT_BACK = text("SELECT set_config('enable_sort', :was, true)")

#: The fold statement of each dialect, built once per process (building it cost ~8 ms
#: a fold, and a statement object that stays the same is compiled once: SQLAlchemy's
#: compiled cache keys on it).
_FOLD: dict[str, Any] = {}


def _fold_span(session: Session, after: int, upto: int) -> None:
    """Fold the chain entries in (after, upto] into the tally: one statement."""
    name = session.get_bind().dialect.name
    stmt = _FOLD.get(name)
    if stmt is None:
        e = audit_entry
        span = and_(
            e.c.seq > bindparam("after", type_=BigInteger),
            e.c.seq <= bindparam("upto", type_=BigInteger),
        )
        stmt = _FOLD[name] = _upsert_statement(session, _entry_lines(session, e, span))
    if name != "postgresql":
        session.execute(stmt, {"after": after, "upto": upto})
        return
    # Grouped by hashing, not by sorting the lines on five text keys. The planner costs
    # the row lookup of the old entries (never executed for entries with cities) for
    # every entry, so the sort's extra cost falls within its 1 % fuzz of the hash's, and
    # the sorted path wins on its order, which nothing uses. With the hash, the fold
    # statement of 10,050 entries took 12.5 ms less backend CPU (78.0 → 65.5 ms, 10 M
    # settlements; docs/performance.md "Session 11: clearing"). Only for this statement.
    was = session.execute(_SORT_OFF).scalar_one()
    session.execute(stmt, {"after": after, "upto": upto})
    session.execute(_SORT_BACK, {"was": was})


def _claim_lines(session: Session, e: Any, span: Any, sign: int) -> list[Select[Any]]:
    """The claim lines (times `sign`) of the settlements' creation entries of `e` that
    `span` selects. A settlement's entry carries its period, both sides' jurisdiction and
    city and the fund's share: its line comes from the chain alone. (Joining each entry
    to its row instead cost a random primary-key read per claim, ≈ 150 µs a claim at 10
    million settlements, whose table and index no longer fit in memory.) Entries chained
    before the cities were in the body are joined to their rows.

    PostgreSQL: one pass over the span, each body parsed once (json_to_record), the row
    read only for an entry without cities — a LATERAL subquery whose condition on the
    body is a one-time filter (kept a subquery by OFFSET 0, else the planner flattens it
    into a join that probes the row of every entry). Before, a second branch parsed every
    body again (`->> 'insured_city'`) to find the old ones: ~40 % of the fold
    statement's time (EXPLAIN ANALYZE, 10,050 entries; docs/performance.md).
    SQLite (no LATERAL): the two branches."""
    S = Settlement
    src, body = _body(session, e)
    is_claim = e.c.kind == "medical.settlement"
    if _pg(session):
        row = (
            select(S.id, *_geo(), S.fund)
            .where(body("insured_city").is_(None), _names_settlement(session, e.c.subject))
            .offset(0)
            .lateral("r")
        )
        one = (
            select(
                body("period").label("period"),
                func.coalesce(row.c.insured_j, body("insured_jurisdiction")).label("insured_j"),
                func.coalesce(row.c.treatment_j, body("treatment_jurisdiction")).label(
                    "treatment_j"
                ),
                func.coalesce(row.c.insured_city, body("insured_city")).label("insured_city"),
                func.coalesce(row.c.treatment_city, body("treatment_city")).label("treatment_city"),
                literal(sign).label("claims"),
                literal(0).label("reversals"),
                (sign * func.coalesce(row.c.fund, body("fund"))).label("amount"),
            )
            .select_from(src.outerjoin(row, true()))
            .where(span, is_claim, or_(body("insured_city").is_not(None), row.c.id.is_not(None)))
        )
        return [one]
    from_body = (
        select(
            body("period").label("period"),
            body("insured_jurisdiction").label("insured_j"),
            body("treatment_jurisdiction").label("treatment_j"),
            body("insured_city").label("insured_city"),
            body("treatment_city").label("treatment_city"),
            literal(sign).label("claims"),
            literal(0).label("reversals"),
            (sign * body("fund")).label("amount"),
        )
        .select_from(src)
        .where(span, is_claim, body("insured_city").is_not(None))
    )
    from_row = (
        select(
            body("period").label("period"),
            *_geo(),
            literal(sign).label("claims"),
            literal(0).label("reversals"),
            (sign * S.fund).label("amount"),
        )
        .select_from(e.join(S, _names_settlement(session, e.c.subject)))
        .where(span, is_claim, body("insured_city").is_(None))
    )
    return [from_body, from_row]


def _entry_lines(session: Session, e: Any, span: Any, sign: int = 1) -> Select[Any]:
    """The tally lines (times `sign`) of the entries of `e` (the chain, or the staged
    entries) that `span` selects."""
    S, ev = Settlement, SettlementEvent
    claims = _claim_lines(session, e, span, sign)
    p = func.coalesce(ev.payload["period"].as_string(), S.period)
    rp = ev.payload["reversal_period"].as_string()
    within = p == rp
    reversed_ = (
        select(
            case((within, p), else_=rp).label("period"),
            *_geo(),
            case((within, -sign), else_=0).label("claims"),
            case((within, 0), else_=sign).label("reversals"),
            (-sign * S.fund).label("amount"),
        )
        .select_from(
            e.join(S, _names_settlement(session, e.c.subject)).join(
                ev,
                and_(
                    ev.settlement_id == S.id,
                    ev.to_state == SettlementState.REVERSED.value,
                ),
            )
        )
        .where(
            span,
            e.c.kind == "medical.settlement.event",
            _field(session, e.c.body, "to_state") == SettlementState.REVERSED.value,
        )
    )
    return union_all(*claims, reversed_).subquery().select()


def _all_lines(session: Session) -> Select[Any]:
    """Every settlement's tally lines as the rows are now, less those of the entries
    committed and not chained yet (they will be folded after the head, so they must not
    be counted twice): one statement, one snapshot of rows and staged entries (the
    rebuild)."""
    S = Settlement
    rev = S.status == SettlementState.REVERSED.value
    claims = select(
        S.period.label("period"),
        *_geo(),
        literal(1).label("claims"),
        literal(0).label("reversals"),
        S.fund.label("amount"),
    ).where(~and_(rev, S.reversal_period == S.period))
    reversals = select(
        S.reversal_period.label("period"),
        *_geo(),
        literal(0).label("claims"),
        literal(1).label("reversals"),
        (-S.fund).label("amount"),
    ).where(rev, S.reversal_period != S.period)
    staged = _entry_lines(session, audit_pending, true(), sign=-1)
    return union_all(claims, reversals, staged).subquery().select()


def _mark(session: Session) -> int:
    """The watermark's position (−1: not built), its row created if missing and locked
    until this transaction ends (columns only: no ORM object to build)."""
    ins = (pg_insert if _pg(session) else sqlite_insert)(ClearingTallyMark)
    session.execute(
        ins.values(id=MARK_ID, position=-1).on_conflict_do_nothing(index_elements=["id"])
    )
    M = ClearingTallyMark
    return int(
        session.execute(select(M.position).where(M.id == MARK_ID).with_for_update()).scalar_one()
    )


def _advance(session: Session, position: int) -> None:
    M = ClearingTallyMark
    session.execute(update(M).where(M.id == MARK_ID).values(position=position, folded_at=utcnow()))


def _lock_head(session: Session) -> int:
    """The committed audit head, locked (PostgreSQL) until this transaction ends: no
    entry is chained meanwhile, so the rows read now are those whose entries are at or
    before it or still staged (entries are sealed after their commit; `_all_lines`
    leaves the staged ones to the folds). SQLite: one writer, a consistent snapshot."""
    audit.head(session)  # chains what this transaction staged, creating the head row
    lock = " FOR UPDATE" if _pg(session) else ""
    seq = session.execute(text(f"SELECT seq FROM audit_head WHERE id = 1{lock}")).scalar()
    return int(seq or 0)


def rebuild(session: Session) -> Folded:
    """Build the tally from the settlements as they are (the first fold, or after a
    repair), up to the audit head held meanwhile."""
    t = time.perf_counter()
    _mark(session)
    head = _lock_head(session)
    session.execute(delete(ClearingTally))
    _upsert(session, _all_lines(session))
    _advance(session, head)
    return Folded(head, 0, rebuilt=True, seconds=time.perf_counter() - t)


def fold(session: Session, batch: int = BATCH) -> Folded:
    """Fold the chain entries after the watermark up to the committed head into the
    tally, `batch` positions per statement; the first fold builds it (`rebuild`)."""
    t = time.perf_counter()
    start = _mark(session)
    if start < 0:
        return rebuild(session)
    h = audit.head(session)
    head = 0 if h is None else h.seq
    pos = start
    while pos < head:
        upto = min(pos + batch, head)
        _fold_span(session, pos, upto)
        pos = upto
    if head > start:
        _advance(session, head)
    return Folded(max(head, start), max(head - start, 0), seconds=time.perf_counter() - t)


def contributions(
    period: str, status: str, reversal_period: str | None, fund: int
) -> list[tuple[str, int, int, int]]:
    """A settlement's lines in the tally: (period, claims, reversals, amount)."""
    reversed_ = status == SettlementState.REVERSED.value
    out = []
    if not (reversed_ and reversal_period == period):
        out.append((period, 1, 0, fund))
    if reversed_ and reversal_period is not None and reversal_period != period:
        out.append((reversal_period, 0, 1, -fund))
    return out


def moved(session: Session, s: Settlement, before: tuple[str, str, str | None]) -> None:
    """A carry moved `s` between periods (`before`: its period, status and reversal
    period until now): add the difference to the tally, unless it is not built yet (its
    first build reads the rows as they are). Locks the watermark, so a build cannot run
    between the move and its commit."""
    if _mark(session) < 0:
        return
    delta: dict[str, list[int]] = {}
    for sign, (p, st, rp) in ((-1, before), (1, (s.period, s.status, s.reversal_period))):
        for period, c, r, a in contributions(p, st, rp, s.fund):
            d = delta.setdefault(period, [0, 0, 0])
            d[0] += sign * c
            d[1] += sign * r
            d[2] += sign * a
    rows = [
        select(
            literal(period).label("period"),
            literal(s.insured_jurisdiction).label("insured_j"),
            literal(s.treatment_jurisdiction).label("treatment_j"),
            literal(s.insured_city).label("insured_city"),
            literal(s.treatment_city).label("treatment_city"),
            literal(c).label("claims"),
            literal(r).label("reversals"),
            literal(a).label("amount"),
        )
        for period, (c, r, a) in sorted(delta.items())
        if (c, r, a) != (0, 0, 0)
    ]
    if rows:
        _upsert(session, union_all(*rows).subquery().select())
    session.flush()


def aggregate(session: Session, period: str) -> pl.DataFrame:
    """The period's pair aggregate of the treatment side, from the tally (fold first)."""
    T = ClearingTally
    rows = session.execute(
        select(T.insured_j, T.treatment_j, T.insured_city, T.treatment_city)
        .add_columns(T.claims, T.reversals, T.amount)
        .where(T.period == period)
        .where((T.claims != 0) | (T.reversals != 0) | (T.amount != 0))
    )
    data = [(*(int(k) for k in r[:4]), int(r[4]), int(r[5]), int(r[6])) for r in rows]
    return pl.DataFrame(data, schema=clearing.PAIR_SCHEMA, orient="row")
