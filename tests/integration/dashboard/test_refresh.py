"""The dashboard's indicators against a real database (SQLite and PostgreSQL): computed
from a known set of events and compared with an independent DuckDB computation; the
incremental refresh equals a full recomputation; small cells are suppressed."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Integer, event, func, select, text

from integration.dashboard.kit import PLAN, build_cases, duckdb_case_indicators
from tongban.dashboard import cells, service
from tongban.dashboard.domain import (
    LEVELS,
    UNTIMED_LEVELS,
    Fact,
    Indicator,
    Key,
    Value,
    fold,
    quantile,
)
from tongban.dashboard.models import DashRefresh

ALL = service.owns_for("*")
CASE_INDICATORS = {i.value for i in Indicator if i.value.startswith("cases.")}


def _rolled(facts: list[Fact], kept: tuple[str, ...], level: str = "") -> dict[Key, Value]:
    """The facts folded by month and the dimensions `kept` ("" in the others); for a
    `level` of UNTIMED_LEVELS, without histograms (the fold keeps none there)."""
    out = fold(
        [
            Fact(
                f.key._replace(
                    day=f.key.day.replace(day=1), **{d: "" for d in cells.REST if d not in kept}
                ),
                f.n,
                f.total,
                f.extra,
                f.days,
                f.ckey,
            )
            for f in facts
        ]
    )
    if level in UNTIMED_LEVELS:
        for v in out.values():
            v.hist = None
    return out


def assert_rollups(session, facts: list[Fact]) -> None:
    """Every roll-up level this node holds equals the facts rolled up to it (sums and
    histograms)."""
    for level, kept in LEVELS.items():
        want = _rolled(facts, kept, level)
        assert cells.read(session, "", monthly=True, level=level) == want, level


def test_case_indicators_equal_an_independent_duckdb_computation(session):
    build_cases(session, PLAN)
    result = service.refresh(session, ALL, settle=timedelta(0))
    assert result.events > 0
    cells = {
        k: v for k, v in service.local_cells(session).items() if k.indicator in CASE_INDICATORS
    }
    expected = duckdb_case_indicators(session)
    got = {}
    for k, v in cells.items():
        days = sorted(d for d, c in (v.hist or {}).items() for _ in range(c))
        got[
            (
                k.indicator,
                k.day,
                k.from_city,
                k.to_city,
                k.jurisdiction,
                k.category,
                k.authority,
                k.matter,
            )
        ] = (v.n, v.total, days)
    assert got == expected
    # The known set itself: 7 received, 5 decided, 1 refused, 4 delivered, 3 rated.
    by_ind: dict[str, int] = {}
    for k, v in cells.items():
        by_ind[k.indicator] = by_ind.get(k.indicator, 0) + v.n
    assert by_ind == {
        "cases.received": 7,
        "cases.decided": 5,
        "cases.refused": 1,
        "cases.delivered": 4,
        "cases.rating": 3,
    }
    assert any(v.hist and max(v.hist) >= 20 for v in cells.values())  # 25/40 days ago


#: Groupings that take each path a page's read can take: the roll-up levels j, a, m, p
#: (`level_for`), and the daily cells over the whole period where no level keeps what is
#: grouped (the category with an authority, a city pair with a matter).
PAGE_READS = [
    ("indicator", "category"),
    ("indicator", "authority"),
    ("indicator", "matter"),
    ("indicator", "from_city", "to_city"),
    ("indicator", "authority", "category"),
    ("indicator", "authority", "matter"),
    ("indicator", "from_city", "to_city", "matter"),
]
DIMS = ("indicator", "day", *cells.REST)


@pytest.mark.usefixtures("without_noise")
def test_every_path_of_a_pages_read_equals_the_duckdb_computation(session):
    """The figures a page reads — whole months from a roll-up level, partial months from
    their roll-up or their days, or the daily cells throughout when no level keeps the
    dimensions — equal the DuckDB cells summed over the period (sums, p50, p90)."""
    build_cases(session, PLAN)
    service.refresh(session, ALL, settle=timedelta(0))
    service.forget(session)
    expected = duckdb_case_indicators(session)
    today = max(k[1] for k in expected)
    inds = sorted({k[0] for k in expected})
    levels = {service.level_for(set(by) - {"indicator"}) for by in PAGE_READS}
    assert levels == {*LEVELS, None}
    for start, end in ((today - timedelta(days=400), today), (today - timedelta(days=45), today)):
        f = service.Filters(start=start, end=end)
        for by in PAGE_READS:
            want: dict[tuple[object, ...], tuple[int, int, list[int]]] = {}
            for k, (n, total, days) in expected.items():
                if start <= k[1] <= end:
                    g = tuple(k[DIMS.index(b)] for b in by)
                    n0, t0, d0 = want.get(g, (0, 0, []))
                    want[g] = (n0 + n, t0 + total, sorted(d0 + days))
            got = service.grouped(session, f, inds, by, 1, timed=True)
            assert set(got) == set(want), by
            for g, (n, total, days) in want.items():
                assert (got[g].n, got[g].total) == (n, total), (by, g)
                hist = _count(days)
                assert (got[g].p50, got[g].p90) == (quantile(hist, 0.5), quantile(hist, 0.9))


def test_incremental_refresh_equals_full_recomputation_and_reads_only_new_events(session):
    for step in PLAN:
        build_cases(session, [step])
        service.refresh(session, ALL, settle=timedelta(0))
    again = service.refresh(session, ALL, settle=timedelta(0))
    assert again.events == 0 and again.cells == 0  # nothing new: nothing read
    incremental = service.local_cells(session)
    service.recompute(session, ALL, settle=timedelta(0))
    assert service.local_cells(session) == incremental
    last = service.last_refresh(session)
    assert last is not None and last.full and last.audit_seq > 0 and len(last.audit_hash) == 64


def test_a_node_counts_only_the_cases_of_the_jurisdictions_it_serves(session):
    build_cases(session, PLAN[:2])
    service.refresh(session, service.owns_for("310000"), settle=timedelta(0))
    assert service.local_cells(session) == {}
    service.recompute(session, service.owns_for("320000"), settle=timedelta(0))
    assert sum(v.n for v in service.local_cells(session).values()) > 0


@pytest.mark.usefixtures("without_noise")
def test_small_cells_are_suppressed_in_every_published_figure(session):
    build_cases(session, PLAN)
    service.refresh(session, ALL, settle=timedelta(0))
    f = service.Filters(start=date.today() - timedelta(days=2), end=date.today() + timedelta(1))
    fig = service.total(session, f, Indicator.CASE_RECEIVED, threshold=10)
    assert fig.suppressed and fig.n is None  # 7 < 10
    fig = service.total(session, f, Indicator.CASE_RECEIVED, threshold=5)
    assert not fig.suppressed and fig.n == 7
    rows = service.daily_series(session, f, Indicator.CASE_RECEIVED, threshold=3)
    assert rows and all(r["suppressed"] == (r["count"] is None) for r in rows)
    assert any(r["suppressed"] for r in rows)  # 1 or 2 cases per city pair
    assert sum(r["count"] or 0 for r in rows) < 7
    heads = {h.label: h for h in service.headlines(session, f, threshold=10)}
    assert heads["收件量"].value == "<阈值" and heads["好评率"].value == "—"
    assert "<阈值" in heads["好评率"].note
    service.forget(session)
    heads = {h.label: h for h in service.headlines(session, f, threshold=1)}
    assert heads["收件量"].value == "7" and heads["好评率"].value == "66.7%"  # 5, 1, 4
    decided = [v for k, v in duckdb_case_indicators(session).items() if k[0] == "cases.decided"]
    on_time = sum(v[1] for v in decided) / sum(v[0] for v in decided)
    assert heads["按时办结率"].value == f"{on_time * 100:.1f}%"


KEYS = st.builds(
    Key,
    indicator=st.sampled_from(["cases.decided", "cases.received"]),
    day=st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 1, 5)),
    from_city=st.sampled_from(["310000", "320500"]),
    to_city=st.sampled_from(["320500", ""]),
    jurisdiction=st.just("320000"),
    category=st.sampled_from(["online", "joint"]),
    authority=st.sampled_from(["苏州市住房公积金管理中心", ""]),
    matter=st.just("YRD-GJJ-0002"),
)
FACTS = st.lists(
    st.builds(
        Fact,
        key=KEYS,
        n=st.integers(1, 3),
        total=st.integers(0, 1),
        extra=st.integers(0, 10**6),
        days=st.one_of(st.none(), st.integers(0, 130)),
        ckey=st.integers(0, 2**32 - 1),
    ),
    max_size=40,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(facts=FACTS, cuts=st.lists(st.integers(0, 40), max_size=5))
def test_storing_in_batches_equals_storing_at_once(session, facts, cuts):
    cells.forget_origin(session, "")
    bounds = sorted({0, len(facts), *(c for c in cuts if c <= len(facts))})
    for a, b in zip(bounds, bounds[1:], strict=False):
        service.store(session, fold(facts[a:b]), origin="")
    assert service.local_cells(session) == fold(facts)
    # p50/p90 of the merged histograms are those of all the handling times.
    for k, v in fold(facts).items():
        times = sorted(min(f.days, 120) for f in facts if f.key == k and f.days is not None)
        if times:
            assert quantile(v.hist, 0.5) == times[-(-len(times) // 2) - 1]
    cells.forget_origin(session, "")
    assert session.scalar(select(func.count()).select_from(DashRefresh)) == 0


SPREAD_KEYS = st.builds(
    Key,
    indicator=st.just("cases.decided"),
    day=st.dates(min_value=date(2026, 1, 20), max_value=date(2026, 4, 10)),
    from_city=st.sampled_from(["310000", "320500"]),
    to_city=st.sampled_from(["320500", "330100"]),
    jurisdiction=st.sampled_from(["320000", "330000"]),
    category=st.sampled_from(["online", "joint"]),
    authority=st.sampled_from(["苏州市住房公积金管理中心", "杭州市医保局"]),
    matter=st.sampled_from(["YRD-GJJ-0002", "YRD-YB-0001"]),
)
BY = [(), ("from_city", "to_city"), ("authority",), ("matter",), ("jurisdiction", "category")]


def spread_facts(days: st.SearchStrategy[int | None], most: int) -> st.SearchStrategy[list[Fact]]:
    """Lists of facts over SPREAD_KEYS, each with `days` (its handling time, or none)."""
    fact = st.builds(
        Fact,
        key=SPREAD_KEYS,
        n=st.integers(1, 3),
        total=st.integers(0, 1),
        extra=st.integers(0, 10**6),
        days=days,
        ckey=st.integers(0, 2**32 - 1),
    )
    return st.lists(fact, max_size=most)


@pytest.mark.usefixtures("without_noise")
@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    facts=spread_facts(st.integers(0, 30), 60),
    start=st.dates(min_value=date(2026, 1, 15), max_value=date(2026, 3, 1)),
    span=st.integers(0, 90),
    by=st.sampled_from(BY),
    authority=st.sampled_from(["", "杭州市医保局"]),
)
def test_sums_over_monthly_rollups_equal_sums_of_the_daily_cells(
    session, facts, start, span, by, authority
):
    """Whole months are read from the roll-ups (at the smallest level that keeps what is
    grouped and filtered), the ends from the daily cells: the same sums and the same
    p50/p90 as adding the facts of those days."""
    cells.forget_origin(session, "")
    service.store(session, fold(facts), origin="")
    service.forget(session)
    end = start + timedelta(days=span)
    f = service.Filters(start=start, end=end, authority=authority)
    got = service.grouped(session, f, ["cases.decided"], by, 1, timed=True)
    picked = [
        x
        for x in facts
        if start <= x.key.day <= end and (not authority or x.key.authority == authority)
    ]
    want: dict[tuple[str, ...], list[Fact]] = {}
    for x in picked:
        want.setdefault(tuple(getattr(x.key, b) for b in by), []).append(x)
    assert set(got) == set(want)
    for k, xs in want.items():
        times = sorted(x.days for x in xs if x.days is not None)
        assert got[k].n == sum(x.n for x in xs) and got[k].total == sum(x.total for x in xs)
        assert got[k].extra == sum(x.extra for x in xs)
        assert got[k].p50 == quantile(_count(times), 0.5)
        assert got[k].p90 == times[max(0, -(-len(times) * 9 // 10) - 1)]
    assert_rollups(session, facts)
    cells.forget_origin(session, "")


def _count(times: list[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for t in times:
        out[t] = out.get(t, 0) + 1
    return out


def test_a_large_refresh_leaves_the_pages_tables_analysed_on_postgresql(session, monkeypatch):
    """A refresh folding at least ANALYZE_AFTER events ANALYZEs the tables the pages read
    in its own transaction, so the pages after it are planned on the new sizes (not on
    what autovacuum last saw)."""
    monkeypatch.setattr(cells, "ANALYZE_AFTER", 1)
    build_cases(session, PLAN)
    result = service.refresh(session, ALL, settle=timedelta(0))
    n = session.scalar(select(func.count()).select_from(cells.CELL))
    assert result.cells == n  # what the CLI and the job report (psycopg said -1 → 0)
    if session.get_bind().dialect.name != "postgresql":
        return
    estimated = session.execute(
        select(func.cast(func.max(text("reltuples")), Integer))
        .select_from(text("pg_class"))
        .where(text("relname = 'dash_cell'"))
    ).scalar()
    assert n and estimated == n


def test_a_fold_that_adds_to_held_keys_and_creates_new_ones_in_one_pass(session):
    """The fold updates the keys (and histogram buckets, and monthly roll-ups) the tables
    hold and inserts the others in the same pass: no key twice, nothing lost."""
    cells.forget_origin(session, "")
    held = Key("cases.decided", date(2026, 1, 5), "310000", "320500", "320000", "online", "a", "m")
    first = [Fact(held, n=2, total=1, extra=5, days=3), Fact(held, days=4)]
    service.store(session, fold(first), origin="")
    new_day = held._replace(day=date(2026, 1, 6))  # same month: its roll-ups are held
    new_month = held._replace(day=date(2026, 2, 1), to_city="330100")  # new roll-ups
    second = [
        Fact(held, n=3, total=0, extra=1, days=3),  # a bucket held
        Fact(held, days=9),  # a new bucket of a held cell
        Fact(new_day, days=3),
        Fact(new_month, n=2, extra=7),
    ]
    service.store(session, fold(second), origin="")
    assert service.local_cells(session) == fold(first + second)
    assert_rollups(session, first + second)
    # One row per key: a second insert of a held key would have failed on the unique key;
    # a missed update would show in the sums above.
    cell_rows = session.scalar(
        select(func.count()).select_from(cells.CELL).where(cells.CELL.c.origin == "")
    )
    assert cell_rows == 3
    cells.forget_origin(session, "")


def test_a_fold_holds_the_origins_lock_until_the_transaction_ends(session):
    """PostgreSQL: the fold takes the origin's advisory lock (the refresh and a peer's
    import of the same origin wait for each other); SQLite serialises writers itself."""
    if cells.dialect(session) != "postgresql":
        return
    cells.forget_origin(session, "320000")
    k = Key("cases.decided", date(2026, 1, 5), "310000", "320500", "320000", "online", "a", "m")
    service.store(session, fold([Fact(k)]), origin="320000")
    held = session.scalar(
        text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND pid = pg_backend_pid() AND classid = :c"
            " AND objid = hashtext('320000')::oid"
        ),
        {"c": cells.LOCK_CLASS},
    )
    assert held == 1


def _rollup_rows(facts: list[Fact]) -> tuple[int, int]:
    """The monthly roll-up rows and their histogram rows that adding `facts` makes: a row
    per level and month key, a histogram row per bucket of it."""
    rolled = [_rolled(facts, kept, level) for level, kept in LEVELS.items()]
    return sum(map(len, rolled)), sum(len(v.hist or {}) for r in rolled for v in r.values())


def _rows(session, origin: str) -> tuple[int, int, int, int]:
    c, h, m, mh = cells.CELL, cells.HIST, cells.MONTH, cells.MONTH_HIST
    return (
        session.scalar(select(func.count()).select_from(c).where(c.c.origin == origin)),
        session.scalar(
            select(func.count())
            .select_from(h.join(c, c.c.id == h.c.cell_id))
            .where(c.c.origin == origin)
        ),
        session.scalar(select(func.count()).select_from(m).where(m.c.origin == origin)),
        session.scalar(
            select(func.count())
            .select_from(mh.join(m, m.c.id == mh.c.month_id))
            .where(m.c.origin == origin)
        ),
    )


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(facts=spread_facts(st.one_of(st.none(), st.integers(0, 4)), 40))
def test_a_fold_into_an_origin_holding_nothing_inserts_each_row_once(session, facts):
    """The first fold into an origin holding no cells (a new install, `recompute`, a peer's
    full snapshot) inserts without conflict arbitration, the next ones add to what is
    held: a row per cell, bucket, roll-up and roll-up bucket either way (no row dropped,
    none twice), the same sums — and another origin's cells with the same keys do not
    make the first fold take the other path."""
    seen: list[str] = []

    def record(conn, cursor, statement, *a):  # type: ignore[no-untyped-def]
        head = statement.split("(")[0]
        if statement.startswith("INSERT INTO dash_") and "dash_stage" not in head:
            seen.append(statement)

    for origin in ("", "320000"):
        cells.forget_origin(session, origin)
    service.store(session, fold(facts), origin="320000")
    event.listen(session.get_bind(), "before_cursor_execute", record)
    try:
        service.store(session, fold(facts), origin="")
        first = list(seen)
        seen.clear()
        service.store(session, fold(facts), origin="")
    finally:
        event.remove(session.get_bind(), "before_cursor_execute", record)
    if facts:
        assert len(first) == 4 and not any("ON CONFLICT" in s for s in first)
        assert len(seen) == 4 and all("ON CONFLICT" in s for s in seen)
    twice = fold(facts + facts)
    assert service.local_cells(session) == twice
    assert_rollups(session, facts + facts)
    once = fold(facts)
    want = (len(once), sum(len(v.hist or {}) for v in once.values()), *_rollup_rows(facts))
    assert _rows(session, "") == want
    assert _rows(session, "320000") == want
    for origin in ("", "320000"):
        cells.forget_origin(session, origin)
