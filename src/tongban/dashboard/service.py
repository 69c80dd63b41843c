"""Use cases of the dashboard: fold new events into the aggregate cells (refresh), rebuild
them from scratch (recompute), and read them for pages, exports and open data with
small cells suppressed. Never commits: the job, request or CLI command does."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, Table, delete, func, select, union_all
from sqlalchemy.orm import Session

from tongban.dashboard import cellkey, cells, sources
from tongban.dashboard.domain import (
    Fact,
    Indicator,
    Key,
    Scope,
    Value,
    fold,
    level_for,
    quantile,
    suppressed,
)
from tongban.dashboard.models import DashRefresh, DashWatermark
from tongban.db import utcnow
from tongban.errors import FieldError, ValidationFailed
from tongban.localtime import local_date

Owns = Scope
AUDIT = "audit"


def owns_for(served: str) -> Scope:
    """Whose records this node counts: the jurisdictions it serves (its settings'
    `served_jurisdictions`, "*" or a comma list; a record naming none is counted)."""
    return Scope(served)


# --- refresh ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefreshResult:
    events: int
    cells: int
    audit_seq: int


def _watermark(session: Session, source: str) -> DashWatermark:
    wm = session.get(DashWatermark, source)
    if wm is None:
        wm = DashWatermark(source=source, position=0, mark_id="")
        session.add(wm)
    return wm


#: Chain positions read per slice of the refresh's statements. PostgreSQL: one slice of
#: a million rather than ten of 100,000 took 8.75 / 6.56 / 8.39 / 6.84 s of backend CPU
#: (session 12, alternating, 1 M events): the per-slice statements and the copy's
#: ANALYZE are paid once; SQLite was no better in CPU and slower in wall time.
CHAIN_SLICE = {"postgresql": 1_000_000, "sqlite": 100_000}
#: Rows of a table read by time (licence and card uses, clearing runs) held in memory at
#: a time.
ROWS_READ = 100_000


def refresh(
    session: Session,
    owns: Scope,
    *,
    batch: int | None = None,
    settle: timedelta = timedelta(minutes=5),
    now: datetime | None = None,
    full: bool = False,
) -> RefreshResult:
    """Fold every event recorded since the last refresh into this node's cells: the audit
    chain after its watermark up to the committed head (set-based SQL, `batch` entries
    per slice of statements; by default `CHAIN_SLICE` of the dialect), and the tables
    read by time up to `now - settle` (`batch` rows, by default `ROWS_READ`, at a time in
    memory). Costs O(new events), never a rescan. Logs the refresh with the chain
    position and checkpoint it was computed at."""
    slice_ = batch or CHAIN_SLICE.get(cells.dialect(session), ROWS_READ)
    cells.lock_origin(session, "")  # before the watermarks are read: one refresh at a time
    head_seq, head_hash = sources.committed_head(session)
    wm = _watermark(session, AUDIT)
    # A large span: the stage is built and committed on a session of its own, so that
    # the fold's roll-ups can be grouped on a second connection (cells.Stage).
    committed = cells.pipelined(session, head_seq - wm.position)
    if committed:
        cells.drop_leftovers(session)
    stage = cells.Stage(session, committed=committed)
    try:
        events = _stage(session, stage, owns, wm, head_seq, slice_, now, settle, batch)
        stage.seal(session)
    except BaseException:
        stage.abandon()
        raise
    try:
        touched = cells.fold_stage(
            session, origin="", stage=stage.table, committed=stage if stage.sealed else None
        )
    except BaseException:
        stage.discard()
        raise
    stage.close(session)
    if events >= cells.ANALYZE_AFTER:
        cells.analyze_read_tables(session)
    forget(session)
    cp = sources.checkpoint_covering(session, head_seq)
    session.add(
        DashRefresh(
            at=utcnow(),
            events=events,
            audit_seq=head_seq,
            audit_hash=head_hash,
            checkpoint_seq=cp[0] if cp else None,
            checkpoint_hash=cp[1] if cp else None,
            full=full,
        )
    )
    session.flush()
    return RefreshResult(events, touched, head_seq)


def _stage(
    session: Session,
    stage: cells.Stage,
    owns: Scope,
    wm: DashWatermark,
    head_seq: int,
    slice_: int,
    now: datetime | None,
    settle: timedelta,
    batch: int | None,
) -> int:
    """Put the facts of every event since the watermarks on `stage` (the chain's up to
    `head_seq`, the tables read by time up to `now - settle`) and move the watermarks;
    how many events."""
    events = 0
    memory: dict[Key, Value] = {}
    moment = now or utcnow()
    keys = cellkey.secret(session)
    if head_seq > wm.position:
        # The working days the facts' statements join: written by the stage's writer
        # (on a committed stage's session they must be committed with it).
        w = stage.writer(session)
        wd = sources.working_days(session)
        sources.fill_workdays(w, wd, local_date(moment) + timedelta(days=400))
        if w is session:
            cells.note_workdays(session)
        pos = wm.position
        while pos < head_seq:
            upto = min(pos + slice_, head_seq)
            events += sources.stage_audit(w, pos, upto, owns, stage, keys)
            pos = upto
        wm.position = head_seq
        wm.updated_at = utcnow()
    until = moment - settle
    places = sources.city_jurisdictions(session)
    # Sources read by (time, id) after the settling lag: (watermark, table, time column,
    # its facts). Clearing runs are read once closed (immutable).
    by_time: list[tuple[str, Any, str, Callable[[Sequence[Any]], list[Fact]]]] = [
        (
            "licence_use",
            sources.licence_use,
            "verified_at",
            lambda rows: sources.licence_facts(session, rows, owns, keys),
        ),
        (
            "card_use",
            sources.card_use,
            "received_at",
            lambda rows: sources.card_facts(rows, owns, places, keys),
        ),
        (
            "clearing_run",
            sources.clearing_run,
            "closed_at",
            lambda rows: sources.clearing_facts(session, rows, owns, places, keys),
        ),
    ]
    for name, t, when, facts in by_time:
        mark = _watermark(session, name)
        start = sources.Mark(mark.mark_at, mark.mark_id)
        for rows in sources._by_time(session, t, t.c[when], start, until, batch or ROWS_READ):
            fold(facts(rows), memory)
            events += len(rows)
            mark.mark_at, mark.mark_id = getattr(rows[-1], when), str(rows[-1].id)
    stage.put_cells(session, memory)
    return events


def recompute(session: Session, owns: Scope, **kw: Any) -> RefreshResult:
    """Forget this node's cells and watermarks and fold every event again (after a change
    of the rules, or to check the incremental figures)."""
    cells.forget_origin(session, "")
    session.execute(delete(DashWatermark))
    session.flush()
    return refresh(session, owns, full=True, **kw)


def store(session: Session, new: dict[Key, Value], origin: str) -> None:
    """Add cells held in memory to the stored cells of `origin`."""
    cells.store(session, new, origin)


def last_refresh(session: Session) -> DashRefresh | None:
    return session.scalars(select(DashRefresh).order_by(DashRefresh.id.desc()).limit(1)).first()


def local_cells(session: Session, *, monthly: bool = False) -> dict[Key, Value]:
    """This node's stored cells, or their monthly roll-ups (for tests and publication)."""
    return cells.read(session, "", monthly=monthly)


# --- reading --------------------------------------------------------------------------------


SCOPES = ("local", "federation")
GRAINS = ("day", "week", "month")


@dataclass(frozen=True)
class Filters:
    """What a page, an export or the open-data API asks for."""

    start: date
    end: date
    jurisdiction: str = ""
    from_city: str = ""
    to_city: str = ""
    authority: str = ""
    matter: str = ""
    category: str = ""
    scope: str = "federation"
    cross_only: bool = False

    def query(self) -> dict[str, str]:
        """As URL query parameters (empty ones left out)."""
        raw = {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "jurisdiction": self.jurisdiction,
            "from_city": self.from_city,
            "to_city": self.to_city,
            "authority": self.authority,
            "matter": self.matter,
            "category": self.category,
            "scope": self.scope if self.scope != "federation" else "",
        }
        return {k: v for k, v in raw.items() if v}


def parse_filters(
    today: date,
    *,
    start: str | None = None,
    end: str | None = None,
    period: str | None = None,
    **dims: str | None,
) -> Filters:
    """Filters from query parameters; a bad date or scope is a 422 naming the field."""
    errors: list[FieldError] = []

    def day(name: str, raw: str | None, default: date) -> date:
        if not raw:
            return default
        try:
            return date.fromisoformat(raw)
        except ValueError:
            errors.append(FieldError(name, "日期格式应为 YYYY-MM-DD"))
            return default

    span = {"7d": 7, "30d": 30, "90d": 90, "365d": 365}.get(period or "", 30)
    e = day("end", end, today)
    s = day("start", start, e - timedelta(days=span - 1))
    if s > e:
        errors.append(FieldError("start", "开始日期不能晚于结束日期"))
    if (e - s).days > 3660:
        errors.append(FieldError("start", "查询区间不能超过十年"))
    scope = dims.pop("scope", None) or "federation"
    if scope not in SCOPES:
        errors.append(FieldError("scope", "范围应为 local 或 federation"))
    clean = {k: (v or "").strip()[:120] for k, v in dims.items() if k != "cross_only"}
    for name in ("jurisdiction", "from_city", "to_city"):
        v = clean.get(name, "")
        if v and not (len(v) == 6 and v.isdigit()):
            errors.append(FieldError(name, "应为 6 位行政区划代码"))
    if errors:
        raise ValidationFailed(errors[0]["message"], errors=errors)
    return Filters(
        start=s,
        end=e,
        scope=scope,
        cross_only=bool(dims.get("cross_only")),
        **clean,
    )


def _where(q: Any, t: Table, when: Any, start: date, end: date, f: Filters, ind: Any) -> Any:
    q = q.where(t.c.indicator.in_(list(ind)), when >= start, when <= end)
    if f.scope == "local":
        q = q.where(t.c.origin == "")
    for name in ("jurisdiction", "from_city", "to_city", "authority", "matter", "category"):
        value = getattr(f, name)
        if value:
            q = q.where(t.c[name] == value)
    if f.cross_only:
        q = q.where(t.c.from_city != t.c.to_city)
    return q


def _next_month(d: date) -> date:
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1)


def segments(start: date, end: date, monthly: bool) -> list[tuple[bool, date, date]]:
    """The period as (from the monthly roll-ups?, first, last): whole months from the
    roll-ups (first and last are months' first days), the partial months at either end
    from the daily cells."""
    m1 = start if start.day == 1 else _next_month(start)
    mk = _next_month(end) if _next_month(end) - timedelta(days=1) == end else end.replace(day=1)
    if not monthly or m1 >= mk:
        return [(False, start, end)]
    out = []
    if start < m1:
        out.append((False, start, m1 - timedelta(days=1)))
    last = mk - timedelta(days=1)
    out.append((True, m1, last.replace(day=1)))
    if mk <= end:
        out.append((False, mk, end))
    return out


@dataclass
class Figure:
    """An aggregate as published: the count with its noise (`cellkey.noise`), the sums
    scaled with it, None values when suppressed. `rate`: total / n of the exact sums
    (a share, not recovered by subtraction: published exactly)."""

    n: int | None
    total: int | None = None
    extra: int | None = None
    p50: int | None = None
    p90: int | None = None
    suppressed: bool = False
    hist: dict[int, int] | None = field(default=None, repr=False)
    rate: float | None = None

    def share(self) -> float | None:
        return None if self.suppressed else self.rate


def _figure(v: Value, threshold: int) -> Figure:
    """The published figure of the exact sums `v`: its count n + d (d from the cell's key,
    `cellkey.noise`), suppressed when that is under the threshold; the sums scaled by the
    same ratio; p50/p90 and the share from the exact sums."""
    n = v.n
    published = n + cellkey.noise(n, v.ckey)
    if suppressed(published, threshold):
        return Figure(None, suppressed=True)
    return Figure(
        published,
        cellkey.scaled(v.total, n, published),
        cellkey.scaled(v.extra, n, published),
        quantile(v.hist, 0.5),
        quantile(v.hist, 0.9),
        hist=v.hist,
        rate=None if n <= 0 else round(v.total / n, 4),
    )


_MEMO = "tongban.dashboard.grouped"


def _needed(f: Filters, by: Sequence[str]) -> set[str]:
    """The key dimensions a sum grouped `by` under filters `f` must keep."""
    out = {b for b in by if b not in ("month", "indicator")}
    out |= {
        n
        for n in ("jurisdiction", "from_city", "to_city", "authority", "matter", "category")
        if getattr(f, n)
    }
    if f.cross_only:
        out |= {"from_city", "to_city"}
    return out


def _raw(
    session: Session,
    f: Filters,
    indicators: Sequence[str],
    by: Sequence[str],
    timed: bool,
    only: tuple[str, tuple[str, ...]] | None = None,
    *,
    sums: bool = True,
) -> dict[tuple[Any, ...], Value]:
    """Sums over everything but `by`, unsuppressed; remembered for the rest of the
    session's unit of work (a page asks for the same sums in several places). Whole
    months are read from the monthly roll-ups unless `by` holds "day" (a daily series;
    "month" groups by the month's first day) or no roll-up level keeps every dimension
    grouped or filtered (`level_for`: then the daily cells of the whole period); with
    `timed`, the histogram buckets are summed in SQL too (with `sums` False, only they:
    the values' n/total/extra stay 0, for a caller that has the sums already); `only`
    (dimension, values) keeps those values of it. The period's segments (daily ends, whole months) are one `UNION ALL`
    summed again outside, so a figure is one statement (two when timed), whatever the
    period: one round trip each on PostgreSQL."""
    memo: dict[Any, dict[tuple[Any, ...], Value]] = session.info.setdefault(_MEMO, {})
    mkey = (f, tuple(str(i) for i in indicators), tuple(by), timed, only, sums)
    if mkey in memo:
        return memo[mkey]
    width = len(by)
    parts_sums, hists = [], []
    level_name = None if "day" in by else level_for(_needed(f, by), timed)
    parts = segments(f.start, f.end, level_name is not None)
    if level_name is not None:
        parts = _coalesce([_whole_month(session, indicators, *p) for p in parts])
    for monthly, first, last in parts:
        t, h, owner, when = (
            (cells.MONTH, cells.MONTH_HIST, "month_id", "month")
            if monthly
            else (cells.CELL, cells.HIST, "cell_id", "day")
        )
        cols = [
            (
                (t.c[when] if monthly else cells.month_of(session, t.c.day))
                if b == "month"
                else t.c[b]
            ).label(f"k{i}")
            for i, b in enumerate(by)
        ]
        level = [t.c.level == level_name] if monthly else []
        if only is not None:
            level.append(t.c[only[0]].in_(list(only[1])))
        q = select(*cols, *(t.c[c].label(c) for c in cells.SUMS))
        parts_sums.append(_where(q, t, t.c[when], first, last, f, indicators).where(*level))
        if timed:
            q = select(*cols, h.c.bucket.label("bucket"), h.c.n.label("n")).select_from(
                t.join(h, h.c[owner] == t.c.id)
            )
            hists.append(_where(q, t, t.c[when], first, last, f, indicators).where(*level))
    acc: dict[tuple[Any, ...], Value] = {}
    if sums:
        u = _union(parts_sums)
        keys = [u.c[f"k{i}"] for i in range(width)]
        q = select(*keys, *(func.sum(u.c[c]) for c in cells.SUMS))
        if keys:
            q = q.group_by(*keys)
        for row in session.execute(q):
            n, tot, extra, ckey = (int(x or 0) for x in row[width:])
            if n or tot:
                acc[tuple(row[:width])] = Value(n, tot, extra, ckey=ckey)
    if timed:
        u = _union(hists)
        keys = [u.c[f"k{i}"] for i in range(width)]
        q = select(*keys, u.c.bucket, func.sum(u.c.n)).group_by(*keys, u.c.bucket)
        for row in session.execute(q):
            v = acc.setdefault(tuple(row[:width]), Value())
            if v.hist is None:
                v.hist = {}
            v.hist[int(row[-2])] = int(row[-1] or 0)
    memo[mkey] = acc
    return acc


def _whole_month(
    session: Session, indicators: Sequence[str], monthly: bool, first: date, last: date
) -> tuple[bool, date, date]:
    """A partial month read from the daily cells, as its monthly roll-up when no cell of
    `indicators` lies in the days of that month the period leaves out (the month before
    the data begins, or the current month up to today): the roll-up then holds exactly
    the same sums, in a twelfth of the rows or fewer. Checked once per unit of work (an
    index probe per side). Exact: a roll-up and its days are written in the same
    transaction (a refresh committing between the probe and the read is seen by the
    read, as by any later read of the same page)."""
    start = first.replace(day=1)
    stop = _next_month(first) - timedelta(days=1)
    if monthly or last > stop or (first == start and last == stop):
        return monthly, first, last
    memo: dict[Any, bool] = session.info.setdefault(_MEMO + ".empty", {})
    key = (tuple(indicators), first, last)
    if key not in memo:
        t = cells.CELL
        outside = []
        if first > start:
            outside.append((start, first - timedelta(days=1)))
        if last < stop:
            outside.append((last + timedelta(days=1), stop))
        memo[key] = all(
            session.execute(
                select(t.c.id)
                .where(t.c.indicator.in_(list(indicators)), t.c.day >= a, t.c.day <= b)
                .limit(1)
            ).first()
            is None
            for a, b in outside
        )
    return (True, start, start) if memo[key] else (monthly, first, last)


def _coalesce(parts: list[tuple[bool, date, date]]) -> list[tuple[bool, date, date]]:
    """Adjacent runs of whole months as one (one branch of the union fewer)."""
    out: list[tuple[bool, date, date]] = []
    for p in parts:
        if out and p[0] and out[-1][0] and _next_month(out[-1][2]) == p[1]:
            out[-1] = (True, out[-1][1], p[2])
        else:
            out.append(p)
    return out


def _union(parts: list[Any]) -> Any:
    """The segments' rows as one subquery (a single segment as itself)."""
    if len(parts) == 1:
        return parts[0].subquery("seg")
    selects: list[Select[Any]] = parts
    return union_all(*selects).subquery("seg")


def forget(session: Session) -> None:
    """Drop the remembered sums (after a refresh in the same unit of work)."""
    session.info.pop(_MEMO, None)
    session.info.pop(_MEMO + ".empty", None)


def grouped(
    session: Session,
    f: Filters,
    indicators: Sequence[str],
    by: Sequence[str],
    threshold: int,
    *,
    timed: bool = False,
) -> dict[tuple[Any, ...], Figure]:
    """Cells summed over everything but `by` (dimension names), small ones suppressed.
    With `timed`, histograms are merged too (for p50/p90)."""
    raw = _raw(session, f, indicators, by, timed)
    return {k: _figure(v, threshold) for k, v in raw.items()}


def decided_total(session: Session, f: Filters, threshold: int) -> Figure:
    """Cases decided with p50/p90 (the histogram buckets summed in SQL)."""
    return total(session, f, Indicator.CASE_DECIDED, threshold, timed=True)


def total(session: Session, f: Filters, indicator: str, threshold: int, **kw: Any) -> Figure:
    return grouped(session, f, [indicator], (), threshold, **kw).get((), Figure(0, 0, 0))


@dataclass(frozen=True)
class Headline:
    label: str
    value: str
    note: str = ""
    indicator: str = ""


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def _count(fig: Figure) -> str:
    return "<阈值" if fig.suppressed else f"{fig.n or 0:,}"


#: The indicators the headline figures read.
HEADLINE_INDICATORS = (
    Indicator.CASE_RECEIVED,
    Indicator.CASE_DECIDED,
    Indicator.CASE_DELIVERED,
    Indicator.CASE_RATING,
    Indicator.TICKET_CLOSED,
    Indicator.TICKET_REOPENED,
    Indicator.TICKET_SATISFACTION,
    Indicator.SETTLEMENT,
    Indicator.EVIDENCE,
    Indicator.LICENCE_VERIFIED,
    Indicator.CARD_USE,
)


def headlines(session: Session, f: Filters, threshold: int) -> list[Headline]:
    """The headline figures of the dashboard's front page."""
    # Every headline figure from one grouped read (two statements: sums, and the
    # histogram buckets of the timed ones), the cross-border count from one more.
    raw = _raw(session, f, HEADLINE_INDICATORS, ("indicator", "category"), True)
    sums: dict[str, Value] = {}
    for (ind, _cat), v in raw.items():
        sums.setdefault(str(ind), Value()).add(v)

    def fig(ind: str) -> Figure:
        return _figure(sums.get(ind) or Value(), threshold)

    def by_category(ind: str, cat: str) -> Figure:
        return _figure(raw.get((ind, cat)) or Value(), threshold)

    received, decided = fig(Indicator.CASE_RECEIVED), fig(Indicator.CASE_DECIDED)
    cross = _cross_border(session, f, threshold)
    delivered = fig(Indicator.CASE_DELIVERED)
    tickets, reopened = fig(Indicator.TICKET_CLOSED), fig(Indicator.TICKET_REOPENED)
    verdicts, settled = fig(Indicator.TICKET_SATISFACTION), fig(Indicator.SETTLEMENT)
    licences, cards = fig(Indicator.LICENCE_VERIFIED), fig(Indicator.CARD_USE)
    # The share of good ratings from the unsuppressed sums, published only when the
    # ratings it is computed from are not a small cell themselves.
    rated = [
        (int(k[1]), v) for k, v in raw.items() if k[0] == Indicator.CASE_RATING and k[1].isdigit()
    ]
    ratings = Value()
    for _, v in rated:
        ratings.add(Value(v.n, ckey=v.ckey))
    rated_all = _figure(ratings, threshold)
    good = sum(v.n for s, v in rated if s >= 4)
    good_share = None if rated_all.suppressed or not ratings.n else good / ratings.n
    answered = by_category(Indicator.EVIDENCE, "answered")
    refused = by_category(Indicator.EVIDENCE, "refused")
    completion = (
        None
        if received.suppressed or delivered.suppressed or not received.n
        else (delivered.n or 0) / received.n
    )
    return [
        Headline("收件量", _count(received), "所选期间受理的申请", Indicator.CASE_RECEIVED),
        Headline("跨城办件", _count(cross), "收件城市与办理城市不同", Indicator.CASE_RECEIVED),
        Headline(
            "按时办结率",
            _pct(decided.share()),
            f"办结 {_count(decided)} 件；用时中位数 {_days(decided.p50)}，90% 在 {_days(decided.p90)} 内",
            Indicator.CASE_DECIDED,
        ),
        Headline(
            "完成率",
            _pct(completion),
            "同期送达数 / 收件数（期初以前收件的送达也计入，可能超过 100%）",
            Indicator.CASE_DELIVERED,
        ),
        Headline(
            "好评率",
            _pct(good_share),
            f"评价 {_count(rated_all)} 件（4–5 分为好评）",
            Indicator.CASE_RATING,
        ),
        Headline(
            "工单按时结案率",
            _pct(tickets.share()),
            f"结案 {_count(tickets)} 件，重办 {_count(reopened)} 次；"
            f"群众评价满意率 {_pct(verdicts.share())}",
            Indicator.TICKET_CLOSED,
        ),
        Headline(
            "数据调取",
            _count(answered),
            f"已提供；拒绝 {_count(refused)} 次",
            Indicator.EVIDENCE,
        ),
        Headline(
            "门诊直接结算",
            _count(settled),
            (
                f"医疗费用 {_yuan(settled.total)}，统筹基金支付占 "
                f"{_pct(None if not settled.total else (settled.extra or 0) / settled.total)}"
            ),
            Indicator.SETTLEMENT,
        ),
        Headline("电子证照核验", _count(licences), "免提交核验次数", Indicator.LICENCE_VERIFIED),
        Headline("社保卡用卡", _count(cards), "刷码（含拒绝）", Indicator.CARD_USE),
    ]


def _cross_border(session: Session, f: Filters, threshold: int) -> Figure:
    """Cases received where the receiving and the handling city differ: added from the
    city-pair sums the heat map reads (the same roll-up level, so no statement of its
    own when the heat map shows cases received, as it does by default; one read of the
    pairs otherwise). Equal to the sum filtered by `from_city != to_city` in SQL."""
    pairs = _raw(session, f, [Indicator.CASE_RECEIVED.value], ("from_city", "to_city"), False)
    v = Value()
    for (fc, tc), x in pairs.items():
        if fc != tc:
            v.add(x)
    return _figure(v, threshold)


def _days(d: int | None) -> str:
    return "—" if d is None else f"{d} 个工作日"


def _yuan(cents: int | None) -> str:
    return "—" if cents is None else f"{cents / 100:,.2f} 元"


def matrix(
    session: Session, f: Filters, indicator: str, threshold: int
) -> dict[tuple[str, str], Figure]:
    """The city-pair flow matrix: (from city, to city) → figure."""
    rows = grouped(session, f, [indicator], ("from_city", "to_city"), threshold)
    return {(str(k[0]), str(k[1])): v for k, v in rows.items() if k[0] and k[1]}


def _bucket(d: date, grain: str) -> date:
    if grain == "week":
        return d - timedelta(days=d.weekday())
    if grain == "month":
        return d.replace(day=1)
    return d


def trend(
    session: Session, f: Filters, indicator: str, grain: str, threshold: int
) -> list[tuple[date, Figure]]:
    """A series by day, week or month (suppression applies to each bucket's sum)."""
    by = "month" if grain == "month" else "day"
    raw = _raw(session, f, [indicator], (by,), False)  # counts and shares: no histogram
    acc: dict[date, Value] = {}
    for (d,), x in raw.items():
        acc.setdefault(_bucket(d, grain), Value()).add(x)
    out = []
    b = _bucket(f.start, grain)
    while b <= f.end:
        out.append((b, _figure(acc.get(b, Value()), threshold)))
        b = _next(b, grain)
    return out


def _next(d: date, grain: str) -> date:
    if grain == "week":
        return d + timedelta(days=7)
    if grain == "month":
        return (d.replace(day=28) + timedelta(days=4)).replace(day=1)
    return d + timedelta(days=1)


def ranking(
    session: Session,
    f: Filters,
    by: str,
    threshold: int,
    limit: int = 1000,
    *,
    timed_top: int | None = None,
) -> list[tuple[str, Figure, Figure]]:
    """Authorities, matters or cities ranked by cases decided: (name, decided, received).
    With `timed_top`, p50/p90 only for the first `timed_top` rows (what a page shows):
    the histograms of those alone are read, not of every authority (the largest read of
    a year's page)."""
    inds = [Indicator.CASE_DECIDED, Indicator.CASE_RECEIVED]
    both = grouped(session, f, inds, ("indicator", by), threshold, timed=timed_top is None)
    decided = {k[1:]: v for k, v in both.items() if k[0] == Indicator.CASE_DECIDED}
    received = {k[1:]: v for k, v in both.items() if k[0] == Indicator.CASE_RECEIVED}
    names = {k[0] for k in decided} | {k[0] for k in received}
    rows = [
        (str(name), decided.get((name,), Figure(0)), received.get((name,), Figure(0)))
        for name in names
        if name
    ]
    rows.sort(key=lambda r: (-(r[1].n or 0), -(r[2].n or 0), r[0]))
    if timed_top is not None and rows:
        # The sums of those rows are in the read above (remembered): only their
        # histogram buckets are read here.
        raw = _raw(session, f, inds, ("indicator", by), False)
        top = tuple(r[0] for r in rows[:timed_top])
        hist = _raw(session, f, [Indicator.CASE_DECIDED], (by,), True, only=(by, top), sums=False)
        for i, (name, _dec, rec) in enumerate(rows[:timed_top]):
            v = raw.get((Indicator.CASE_DECIDED.value, name)) or Value()
            h = hist.get((name,))
            exact = Value(v.n, v.total, v.extra, h.hist if h else None, v.ckey)
            rows[i] = (name, _figure(exact, threshold), rec)
    return rows[:limit]


def daily_series(
    session: Session, f: Filters, indicator: str, threshold: int
) -> list[dict[str, Any]]:
    """Open data: one row per day and city pair (and category), suppressed cells marked."""
    rows = grouped(session, f, [indicator], ("day", "from_city", "to_city", "category"), threshold)
    out = []
    for (d, fc, tc, cat), fig in sorted(rows.items(), key=lambda kv: tuple(map(str, kv[0]))):
        out.append(
            {
                "date": d.isoformat(),
                "from_city": fc,
                "to_city": tc,
                "category": cat,
                "count": fig.n,
                "total": fig.total,
                "extra": fig.extra,
                "suppressed": fig.suppressed,
            }
        )
    return out


def provenance(session: Session) -> dict[str, Any]:
    """What the figures were computed at: the last refresh and its audit chain position."""
    r = last_refresh(session)
    if r is None:
        return {"refreshed_at": None}
    return {
        "refreshed_at": r.at.isoformat(),
        "audit_seq": r.audit_seq,
        "audit_hash": r.audit_hash,
        "checkpoint_seq": r.checkpoint_seq,
        "checkpoint_hash": r.checkpoint_hash,
    }


def indicators_known(names: Iterable[str]) -> list[str]:
    return [n for n in names if n in {i.value for i in Indicator}]
