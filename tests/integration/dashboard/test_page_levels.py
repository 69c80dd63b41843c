"""The roll-up levels the year's page reads (authority, matter, city pair without the
category): their figures equal those summed from the daily cells, the page's combined
reads (headlines, ranking) equal the facts, and migration 0052 rebuilds the levels of a
database folded under the old levels from its whole-key rows."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import MetaData, Table, insert, select

from tongban.dashboard import cells, service
from tongban.dashboard.domain import LEVELS, Fact, Key, Value, fold, level_for, quantile
from tongban.dashboard.models import DashMonth, DashMonthHist

CITIES = (
    ("310000", "320500", "320000"),
    ("320500", "330100", "330000"),
    ("330100", "330100", "330000"),
)
AUTHORITIES = ("苏州市住房公积金管理中心", "杭州市医保局")
MATTERS = ("YRD-GJJ-0002", "YRD-YB-0001")
CATEGORIES = ("online", "window", "joint")


def _facts() -> list[Fact]:
    """Cases received and decided over Jan–Mar 2026, every pair, authority, matter and
    mode, with handling times that differ by mode (so dropping the category must merge
    the histograms, not pick one)."""
    out = []
    day = date(2026, 1, 1)
    i = 0
    while day <= date(2026, 3, 31):
        fc, tc, j = CITIES[i % 3]
        for c, cat in enumerate(CATEGORIES):
            key = Key(
                "cases.received",
                day,
                fc,
                tc,
                j,
                cat,
                AUTHORITIES[(i + c) % 2],
                MATTERS[(i // 2 + c) % 2],
            )
            out.append(Fact(key, n=1 + c))
            out.append(
                Fact(key._replace(indicator="cases.decided"), total=c % 2, days=(i + 5 * c) % 17)
            )
        day += timedelta(days=1)
        i += 1
    return out


@pytest.fixture
def stored(session: Any) -> Iterator[list[Fact]]:
    cells.forget_origin(session, "")
    facts = _facts()
    service.store(session, fold(facts), origin="")
    service.forget(session)
    yield facts
    cells.forget_origin(session, "")


def test_the_pages_levels_leave_the_category_out() -> None:
    assert level_for({"from_city", "to_city"}) == "p" and "category" not in LEVELS["p"]
    assert level_for({"authority"}) == "a" and "category" not in LEVELS["a"]
    assert level_for({"matter"}) == "m" and "category" not in LEVELS["m"]
    assert level_for({"category"}) == "j"
    # An authority's figures by mode (0056).
    assert level_for({"authority", "category"}) == "c"
    # No level keeps these together (the whole-key level is gone since 0055): the
    # daily cells are read.
    assert level_for({"authority", "matter"}) is None
    assert level_for({"from_city", "to_city", "matter"}) is None
    assert level_for({"authority", "category", "matter"}) is None
    assert "*" not in LEVELS


@pytest.mark.usefixtures("without_noise")
@pytest.mark.parametrize(
    "by", [("from_city", "to_city"), ("indicator", "authority"), ("matter",), ("category",)]
)
@pytest.mark.parametrize(
    "period", [(date(2026, 1, 1), date(2026, 3, 31)), (date(2026, 1, 14), date(2026, 3, 9))]
)
def test_a_figure_from_the_rollups_equals_the_daily_cells(
    session: Any, stored: list[Fact], by: tuple[str, ...], period: tuple[date, date]
) -> None:
    f = service.Filters(start=period[0], end=period[1])
    inds = ["cases.received", "cases.decided"]
    got = service.grouped(session, f, inds, by, 1, timed=True)
    # The same sums from the daily cells only (grouped by day too, added here).
    daily = service._raw(session, f, inds, ("day", *by), True)
    want: dict[tuple[Any, ...], Value] = {}
    for k, v in daily.items():
        want.setdefault(k[1:], Value()).add(v)
    assert set(got) == set(want)
    for k, v in want.items():
        assert (got[k].n, got[k].total) == (v.n, v.total)
        assert (got[k].p50, got[k].p90) == (quantile(v.hist, 0.5), quantile(v.hist, 0.9))
    # …and from the facts themselves.
    picked = [x for x in stored if period[0] <= x.key.day <= period[1]]
    assert sum(v.n for v in got.values()) == sum(x.n for x in picked)


@pytest.mark.usefixtures("without_noise")
def test_the_headlines_and_ranking_equal_the_facts(session: Any, stored: list[Fact]) -> None:
    f = service.Filters(start=date(2026, 1, 1), end=date(2026, 3, 20))
    picked = [x for x in stored if f.start <= x.key.day <= f.end]
    heads = {h.label: h for h in service.headlines(session, f, 1)}
    received = sum(x.n for x in picked if x.key.indicator == "cases.received")
    cross = sum(
        x.n
        for x in picked
        if x.key.indicator == "cases.received" and x.key.from_city != x.key.to_city
    )
    assert heads["收件量"].value == f"{received:,}"
    assert heads["跨城办件"].value == f"{cross:,}"
    decided = sorted(x.days for x in picked if x.key.indicator == "cases.decided")
    on_time = sum(x.total for x in picked if x.key.indicator == "cases.decided")
    assert heads["按时办结率"].value == f"{on_time / len(decided) * 100:.1f}%"
    p50 = decided[-(-len(decided) // 2) - 1]
    assert f"用时中位数 {p50} 个工作日" in heads["按时办结率"].note
    for name, dec, rec in service.ranking(session, f, "authority", 1):
        mine = [x for x in picked if x.key.authority == name]
        times = sorted(x.days for x in mine if x.key.indicator == "cases.decided")
        assert rec.n == sum(x.n for x in mine if x.key.indicator == "cases.received")
        assert dec.n == len(times)
        assert dec.p90 == times[max(0, -(-len(times) * 9 // 10) - 1)]


# --- migration 0052 -----------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'levels.db'}"
        return
    pg = os.environ.get("TONGBAN_TEST_PG_URL")
    if not pg:
        pytest.skip("PostgreSQL tier skipped: TONGBAN_TEST_PG_URL is not set")
    from tongban.devserver import pg_database

    with pg_database(pg, "levels") as url:
        yield url


def _before_0059(t: Any) -> Table:
    """A table as it was before migration 0059 added the cells' keys: what the tests of
    earlier migrations write and read at their revisions."""
    return Table(t.name, MetaData(), *(c._copy() for c in t.columns if c.name != "ckey"))


_OLD_CELL = _before_0059(cells.CELL)
_OLD_MONTH = _before_0059(DashMonth.__table__)
_OLD_MONTH_HIST = _before_0059(DashMonthHist.__table__)


def _levels(engine: Any) -> dict[tuple[str, str], tuple[int, dict[int, int]]]:
    m, h = _OLD_MONTH, _OLD_MONTH_HIST
    out = {}
    with engine.connect() as c:
        rows = c.execute(select(m.c.id, m.c.level, m.c.category, m.c.n)).all()
        for id_, level, cat, n in rows:
            hist = dict(c.execute(select(h.c.bucket, h.c.n).where(h.c.month_id == id_)).all())
            out[(level, cat)] = (int(n), {int(k): int(v) for k, v in hist.items()})
    return out


def test_migration_0052_rebuilds_the_levels_from_the_whole_key(fresh_url: str) -> None:
    from tongban.db import make_engine
    from tongban.migrate import downgrade, upgrade

    upgrade(fresh_url, "0051")
    engine = make_engine(fresh_url)
    m, h = _OLD_MONTH, _OLD_MONTH_HIST
    base = {
        "origin": "",
        "indicator": "cases.decided",
        "month": date(2026, 1, 1),
        "from_city": "310000",
        "to_city": "320500",
        "jurisdiction": "320000",
        "total": 0,
        "extra": 0,
    }
    whole = {"authority": "杭州市医保局", "matter": "YRD-YB-0001"}
    with engine.begin() as c:
        for level, cat, n, hist in (
            ("*", "online", 3, {2: 3}),
            ("*", "joint", 5, {2: 1, 4: 4}),
            ("p", "online", 3, {2: 3}),  # as the old levels kept it: by category
            ("p", "joint", 5, {2: 1, 4: 4}),
        ):
            dims = whole if level == "*" else {"authority": "", "matter": ""}
            row = {**base, **dims, "level": level, "category": cat, "n": n}
            id_ = c.execute(insert(m).values(row).returning(m.c.id)).scalar_one()
            c.execute(insert(h), [{"month_id": id_, "bucket": b, "n": k} for b, k in hist.items()])
    upgrade(fresh_url, "0054")
    got = _levels(engine)
    merged = (8, {2: 4, 4: 4})
    assert got[("p", "")] == got[("a", "")] == got[("m", "")] == merged
    assert ("p", "online") not in got and got[("*", "online")] == (3, {2: 3})
    downgrade(fresh_url, "0051")
    got = _levels(engine)
    assert got[("p", "online")] == got[("a", "online")] == (3, {2: 3})
    assert got[("m", "joint")] == (5, {2: 1, 4: 4}) and ("p", "") not in got
    engine.dispose()


@pytest.mark.usefixtures("without_noise")
def test_a_partial_month_is_read_from_its_rollup_only_when_the_days_left_out_are_empty(
    session: Any, stored: list[Fact]
) -> None:
    """Facts run Jan 1 – Mar 31. A period Jan 1 – Mar 31 reads three roll-ups; Feb 10 –
    Mar 31 leaves out Feb 1–9, which hold cells, so February comes from its days. A
    marker added to February's and March's roll-ups shows which were read."""
    m = DashMonth.__table__
    inds = ["cases.received"]
    whole = service.Filters(start=date(2026, 1, 1), end=date(2026, 3, 31))
    part = service.Filters(start=date(2026, 2, 10), end=date(2026, 3, 31))
    before = {
        k: service.grouped(session, f, inds, (), 1)[()].n for k, f in (("w", whole), ("p", part))
    }
    session.execute(
        m.update()
        .where(m.c.level == "j", m.c.indicator == "cases.received", m.c.category == "online")
        .where(m.c.jurisdiction == "330000")
        .where(m.c.month.in_([date(2026, 2, 1), date(2026, 3, 1)]))
        .values(n=m.c.n + 1000)
    )
    service.forget(session)
    assert service.grouped(session, whole, inds, (), 1)[()].n == before["w"] + 2000
    # February from its days (cells on Feb 1–9), March whole from its roll-up.
    assert service.grouped(session, part, inds, (), 1)[()].n == before["p"] + 1000
    picked = [x for x in stored if part.start <= x.key.day and x.key.indicator in inds]
    assert before["p"] == sum(x.n for x in picked)
    # With nothing after the period's end in its month, the month is read whole too.
    cells.forget_origin(session, "")
    service.store(session, fold([x for x in stored if x.key.day <= date(2026, 3, 20)]), origin="")
    service.forget(session)
    short = service.Filters(start=date(2026, 3, 1), end=date(2026, 3, 25))
    n = service.grouped(session, short, inds, (), 1)[()].n
    session.execute(
        m.update()
        .where(m.c.level == "j", m.c.indicator == "cases.received", m.c.category == "online")
        .where(m.c.jurisdiction == "330000")
        .where(m.c.month == date(2026, 3, 1))
        .values(n=m.c.n + 1000)
    )
    service.forget(session)
    assert service.grouped(session, short, inds, (), 1)[()].n == n + 1000


def test_the_pages_ranking_reads_p50_p90_of_its_first_rows_only(
    session: Any, stored: list[Fact]
) -> None:
    f = service.Filters(start=date(2026, 1, 5), end=date(2026, 3, 20))
    full = service.ranking(session, f, "matter", 1)
    top = service.ranking(session, f, "matter", 1, timed_top=1)
    assert [(r[0], r[1].n, r[2].n) for r in top] == [(r[0], r[1].n, r[2].n) for r in full]
    assert (top[0][1].p50, top[0][1].p90) == (full[0][1].p50, full[0][1].p90)
    assert top[0][1].p50 is not None and top[1][1].p50 is None


# --- session 9: fewer statements a page -----------------------------------------------------


def _statements(session: Any) -> list[str]:
    from sqlalchemy import event

    seen: list[str] = []
    engine = session.get_bind()

    def _count(conn: Any, cursor: Any, statement: str, *a: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", _count)
    session.info["_t2_unlisten"] = lambda: event.remove(engine, "before_cursor_execute", _count)
    return seen


def test_the_cross_border_headline_is_added_from_the_heat_maps_city_pairs(
    session: Any, stored: list[Fact]
) -> None:
    """The page reads the heat map (cases received by city pair) before the headlines:
    the cross-border count is then added from those sums, with no statement of its own,
    and equals the facts whose receiving and handling cities differ."""
    f = service.Filters(start=date(2026, 1, 9), end=date(2026, 3, 20))
    picked = [x for x in stored if f.start <= x.key.day <= f.end]
    cross = sum(
        x.n
        for x in picked
        if x.key.indicator == "cases.received" and x.key.from_city != x.key.to_city
    )
    assert 0 < cross < sum(x.n for x in picked if x.key.indicator == "cases.received")
    service.matrix(session, f, "cases.received", 1)
    seen = _statements(session)
    try:
        got = service._cross_border(session, f, 1)
    finally:
        session.info.pop("_t2_unlisten")()
    assert got.n == cross
    assert seen == []
    # Without the heat map's read first: one read of the pairs, the same figure.
    service.forget(session)
    assert service._cross_border(session, f, 1).n == cross
    # A small cross-border count is suppressed like any figure.
    service.forget(session)
    assert service._cross_border(session, f, cross + 1).suppressed


def test_the_rankings_first_rows_get_p50_p90_from_one_histogram_read(
    session: Any, stored: list[Fact]
) -> None:
    """With `timed_top`, the first rows' p50/p90 equal those of the full ranking (which
    reads every histogram), the rest have none, and the top rows' histograms cost one
    statement (their sums are the ranking's own read)."""
    f = service.Filters(start=date(2026, 1, 5), end=date(2026, 3, 27))
    full = service.ranking(session, f, "authority", 1)
    service.forget(session)
    seen = _statements(session)
    try:
        top = service.ranking(session, f, "authority", 1, timed_top=1)
    finally:
        session.info.pop("_t2_unlisten")()
    assert [r[0] for r in top] == [r[0] for r in full] and len(full) == 2
    first, rest = top[0][1], top[1][1]
    assert (first.n, first.total, first.p50, first.p90) == (
        full[0][1].n,
        full[0][1].total,
        full[0][1].p50,
        full[0][1].p90,
    )
    assert first.p50 is not None and rest.p50 is None and rest.n == full[1][1].n
    hist_reads = [s for s in seen if "bucket" in s]
    sum_reads = [s for s in seen if "sum(seg.total)" in s]
    assert len(hist_reads) == 1 and len(sum_reads) == 1  # no second read of the top's sums


# --- migration 0055 -----------------------------------------------------------------------


def _indexes(engine: Any, table: str) -> dict[str, list[str]]:
    from sqlalchemy import inspect

    return {ix["name"]: list(ix["column_names"]) for ix in inspect(engine).get_indexes(table)}


def test_migration_0055_drops_the_whole_key_level_and_the_read_indexes(fresh_url: str) -> None:
    """Upgrade: the `*` roll-ups and their histograms are gone, the other levels stay,
    the unique keys lead with what the pages read by and the read indexes are dropped.
    Downgrade: the old keys and indexes, and `*` rebuilt from the daily cells (sums and
    histograms by month)."""
    from tongban.db import make_engine
    from tongban.migrate import downgrade, upgrade

    upgrade(fresh_url, "0054")
    engine = make_engine(fresh_url)
    c_, ch = _OLD_CELL, cells.HIST
    m, h = _OLD_MONTH, _OLD_MONTH_HIST
    key = {
        "origin": "",
        "indicator": "cases.decided",
        "from_city": "310000",
        "to_city": "320500",
        "jurisdiction": "320000",
        "category": "online",
        "authority": "杭州市医保局",
        "matter": "YRD-YB-0001",
        "extra": 0,
    }
    with engine.begin() as c:
        for day, n, hist in (
            (date(2026, 1, 5), 2, {1: 2}),
            (date(2026, 1, 20), 3, {1: 1, 4: 2}),
            (date(2026, 2, 3), 1, {7: 1}),
        ):
            row = {**key, "day": day, "n": n, "total": n - 1}
            id_ = c.execute(insert(c_).values(row).returning(c_.c.id)).scalar_one()
            c.execute(insert(ch), [{"cell_id": id_, "bucket": b, "n": k} for b, k in hist.items()])
        for level in ("*", "j"):
            dims = {} if level == "*" else {"from_city": "", "to_city": "", "authority": ""}
            row = {**key, **dims, "matter": key["matter"] if level == "*" else ""}
            row |= {"level": level, "month": date(2026, 1, 1), "n": 5, "total": 3}
            id_ = c.execute(insert(m).values(row).returning(m.c.id)).scalar_one()
            c.execute(insert(h), [{"month_id": id_, "bucket": 1, "n": 3}])
    upgrade(fresh_url, "0055")
    with engine.connect() as c:
        assert c.execute(select(m.c.level)).scalars().all() == ["j"]
        assert len(c.execute(select(h.c.month_id)).all()) == 1
    got = _indexes(engine, "dash_cell")
    assert "ix_dash_cell_indicator_day" not in got
    assert got["uq_dash_cell_key"][:3] == ["indicator", "day", "origin"]
    got = _indexes(engine, "dash_month")
    assert "ix_dash_month_level_indicator_month" not in got
    assert got["uq_dash_month_key"][:4] == ["level", "indicator", "month", "origin"]
    downgrade(fresh_url, "0054")
    assert _indexes(engine, "dash_cell")["ix_dash_cell_indicator_day"] == ["indicator", "day"]
    assert _indexes(engine, "dash_cell")["uq_dash_cell_key"][:3] == ["origin", "indicator", "day"]
    assert _indexes(engine, "dash_month")["uq_dash_month_key"][:2] == ["origin", "level"]
    with engine.connect() as c:  # closed at once: on SQLite a connection holds the lock
        rebuilt = {
            (month, matter): (n, total)
            for month, matter, n, total in c.execute(
                select(m.c.month, m.c.matter, m.c.n, m.c.total).where(m.c.level == "*")
            )
        }
    assert rebuilt == {
        (date(2026, 1, 1), "YRD-YB-0001"): (5, 3),
        (date(2026, 2, 1), "YRD-YB-0001"): (1, 0),
    }
    got_hist = _levels(engine)  # (level, category) → (n, hist)
    with engine.connect() as c:
        hists = {
            month: dict(
                c.execute(
                    select(h.c.bucket, h.c.n)
                    .join(m, m.c.id == h.c.month_id)
                    .where(m.c.level == "*", m.c.month == month)
                ).all()
            )
            for month in (date(2026, 1, 1), date(2026, 2, 1))
        }
    assert hists == {date(2026, 1, 1): {1: 3, 4: 2}, date(2026, 2, 1): {7: 1}}
    assert got_hist[("j", "online")] == (5, {1: 3})  # the other levels untouched
    engine.dispose()


# --- migration 0056 -----------------------------------------------------------------------


def test_migration_0056_builds_the_authority_level_from_the_daily_cells(fresh_url: str) -> None:
    """Upgrade: level `c` (authority by mode) of every origin, summed by month from the
    daily cells with their histograms (the fold's own writing of every level is
    checked against the facts in test_refresh.py); the other
    levels untouched. Downgrade: gone."""
    from tongban.db import make_engine
    from tongban.migrate import downgrade, upgrade

    upgrade(fresh_url, "0055")
    engine = make_engine(fresh_url)
    c_, ch, m, h = _OLD_CELL, cells.HIST, _OLD_MONTH, _OLD_MONTH_HIST
    base = {"indicator": "cases.decided", "jurisdiction": "320000", "extra": 0}
    cases = (  # (origin, day, category, authority, matter, n, histogram)
        ("", date(2026, 1, 5), "online", "常州市公安局", "YRD-GA-0001", 2, {1: 2}),
        ("", date(2026, 1, 20), "window", "常州市公安局", "YRD-GA-0001", 3, {1: 1, 4: 2}),
        ("", date(2026, 1, 21), "online", "常州市公安局", "YRD-GA-0002", 1, {2: 1}),
        ("", date(2026, 2, 3), "online", "苏州市医保局", "YRD-YB-0001", 1, {7: 1}),
        ("320000", date(2026, 1, 9), "online", "常州市公安局", "YRD-GA-0001", 4, {3: 4}),
    )
    with engine.begin() as c:
        for i, (origin, day, cat, auth, matter, n, hist) in enumerate(cases):
            row = {
                **base,
                "origin": origin,
                "day": day,
                "from_city": "310000",
                "to_city": f"32050{i}",
                "category": cat,
                "authority": auth,
                "matter": matter,
                "n": n,
                "total": n * 2,
            }
            id_ = c.execute(insert(c_).values(row).returning(c_.c.id)).scalar_one()
            c.execute(insert(ch), [{"cell_id": id_, "bucket": b, "n": k} for b, k in hist.items()])
        kept = {**base, "origin": "", "level": "j", "month": date(2026, 1, 1), "n": 9}
        c.execute(insert(m).values({**kept, "category": "online", "total": 0}))
    upgrade(fresh_url, "0056")

    def level(name: str) -> dict[tuple[str, date, str, str], tuple[int, int, dict[int, int]]]:
        out = {}
        with engine.connect() as c:
            for r in c.execute(select(m).where(m.c.level == name)).mappings():
                hist = c.execute(select(h.c.bucket, h.c.n).where(h.c.month_id == r["id"]))
                key = (r["origin"], r["month"], r["category"], r["authority"], r["matter"])
                assert r["from_city"] == r["to_city"] == ""
                out[key] = (r["n"], r["total"], dict(hist.all()))
        return out

    jan, feb = date(2026, 1, 1), date(2026, 2, 1)
    assert level("c") == {
        ("", jan, "online", "常州市公安局", ""): (3, 6, {1: 2, 2: 1}),
        ("", jan, "window", "常州市公安局", ""): (3, 6, {1: 1, 4: 2}),
        ("", feb, "online", "苏州市医保局", ""): (1, 2, {7: 1}),
        ("320000", jan, "online", "常州市公安局", ""): (4, 8, {3: 4}),
    }
    assert level("d") == {}  # no such level (measured, left out)
    with engine.connect() as c:
        assert c.execute(select(m.c.n).where(m.c.level == "j")).scalars().all() == [9]
    downgrade(fresh_url, "0055")
    assert level("c") == {}
    engine.dispose()


# --- migration 0057 -----------------------------------------------------------------------


def test_migration_0057_drops_the_pair_levels_histograms_and_the_downgrade_rebuilds_them(
    fresh_url: str,
) -> None:
    """Upgrade: level `p`'s histogram rows (of every origin) are deleted, the other
    levels' kept. Downgrade: `p`'s rebuilt from the daily cells' histograms."""
    from tongban.db import make_engine
    from tongban.migrate import downgrade, upgrade

    upgrade(fresh_url, "0056")
    engine = make_engine(fresh_url)
    c_, ch, m, h = _OLD_CELL, cells.HIST, _OLD_MONTH, _OLD_MONTH_HIST
    pair = {"from_city": "310000", "to_city": "320500", "jurisdiction": "320000"}
    base = {"indicator": "cases.decided", "extra": 0, "total": 0, **pair}
    jan = date(2026, 1, 1)
    with engine.begin() as c:
        for origin, day, cat, n, hist in (
            ("", date(2026, 1, 5), "online", 2, {1: 2}),
            ("", date(2026, 1, 20), "window", 3, {1: 1, 4: 2}),
            ("320000", date(2026, 1, 9), "online", 4, {3: 4}),
        ):
            row = {**base, "origin": origin, "day": day, "category": cat, "n": n}
            id_ = c.execute(insert(c_).values(row).returning(c_.c.id)).scalar_one()
            c.execute(insert(ch), [{"cell_id": id_, "bucket": b, "n": k} for b, k in hist.items()])
        for origin, level, n, hist in (
            ("", "p", 5, {1: 3, 4: 2}),
            ("320000", "p", 4, {3: 4}),
            ("", "j", 5, {1: 3, 4: 2}),
        ):
            row = {**base, "origin": origin, "level": level, "month": jan, "n": n}
            if level == "j":
                row.update(from_city="", to_city="", category="online")
            id_ = c.execute(insert(m).values(row).returning(m.c.id)).scalar_one()
            c.execute(insert(h), [{"month_id": id_, "bucket": b, "n": k} for b, k in hist.items()])

    def hists(level: str) -> dict[str, dict[int, int]]:
        with engine.connect() as c:
            q = select(m.c.origin, h.c.bucket, h.c.n).join(h, h.c.month_id == m.c.id)
            out: dict[str, dict[int, int]] = {}
            for origin, bucket, n in c.execute(q.where(m.c.level == level)):
                out.setdefault(origin, {})[int(bucket)] = int(n)
            return out

    upgrade(fresh_url, "0057")
    assert hists("p") == {}
    assert hists("j") == {"": {1: 3, 4: 2}}
    downgrade(fresh_url, "0056")
    assert hists("p") == {"": {1: 3, 4: 2}, "320000": {3: 4}}
    assert hists("j") == {"": {1: 3, 4: 2}}
    engine.dispose()


def test_migration_0059_adds_the_cell_keys_and_has_this_nodes_cells_folded_again(
    fresh_url: str,
) -> None:
    """Upgrade: `ckey` on the cells, roll-ups and stages, the table of the secret; this
    node's own cells, roll-ups, histograms and the watermarks deleted (the next refresh
    folds every event again, with its key), peers' copies kept (key 0 until their next
    full snapshot). Downgrade: the columns and the table gone, peers' copies kept."""
    from sqlalchemy import inspect

    from tongban.db import make_engine
    from tongban.migrate import downgrade, upgrade

    upgrade(fresh_url, "0058")
    engine = make_engine(fresh_url)

    def t(name: str) -> Table:
        return Table(name, MetaData(), autoload_with=engine)

    c_, ch, m, h, w = (
        t(n) for n in ("dash_cell", "dash_hist", "dash_month", "dash_month_hist", "dash_watermark")
    )
    base = {"indicator": "cases.decided", "jurisdiction": "320000", "total": 1, "extra": 0}
    base |= {d: "" for d in ("from_city", "to_city", "category", "authority", "matter")}
    with engine.begin() as c:
        for origin in ("", "320000"):
            row = {**base, "origin": origin, "day": date(2026, 1, 5), "n": 2}
            cid = c.execute(insert(c_).values(row).returning(c_.c.id)).scalar_one()
            c.execute(insert(ch).values(cell_id=cid, bucket=1, n=2))
            row = {**base, "origin": origin, "level": "j", "month": date(2026, 1, 1), "n": 2}
            mid = c.execute(insert(m).values(row).returning(m.c.id)).scalar_one()
            c.execute(insert(h).values(month_id=mid, bucket=1, n=2))
        c.execute(
            insert(w).values(source="audit", position=41, mark_id="", updated_at=date.today())
        )
    upgrade(fresh_url, "0059")
    c_, ch, m, h, w = (
        t(n) for n in ("dash_cell", "dash_hist", "dash_month", "dash_month_hist", "dash_watermark")
    )
    secret = t("dash_secret")
    with engine.connect() as c:
        assert c.execute(select(c_.c.origin, c_.c.n, c_.c.ckey)).all() == [("320000", 2, 0)]
        assert c.execute(select(m.c.origin, m.c.ckey)).all() == [("320000", 0)]
        assert len(c.execute(select(ch)).all()) == len(c.execute(select(h)).all()) == 1
        assert c.execute(select(w)).all() == []
        assert c.execute(select(secret)).all() == []
    for name in ("dash_cell", "dash_month", "dash_stage", "dash_stage_month"):
        assert "ckey" in {col["name"] for col in inspect(engine).get_columns(name)}
    downgrade(fresh_url, "0058")
    insp = inspect(engine)
    assert "dash_secret" not in insp.get_table_names()
    for name in ("dash_cell", "dash_month", "dash_stage", "dash_stage_month"):
        assert "ckey" not in {col["name"] for col in insp.get_columns(name)}
    cell = t("dash_cell")
    with engine.connect() as c:
        assert c.execute(select(cell.c.origin)).scalars().all() == ["320000"]
    engine.dispose()
