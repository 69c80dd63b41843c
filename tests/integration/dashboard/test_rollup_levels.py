"""The monthly roll-ups are built from the stage folded by month once: the finest level
from the stage, each coarser level from a finer level's rows. Every level must equal
the facts grouped at that level directly (sums and histograms), whatever the batches,
and for any set of levels (a level may be added to domain.LEVELS)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tongban.dashboard import cells, service
from tongban.dashboard.domain import HIST_CAP, LEVELS, UNTIMED_LEVELS, Fact, Key, fold
from tongban.dashboard.models import DashEntry, DashStage, DashStageMonth

REST = cells.REST

KEYS = st.builds(
    Key,
    indicator=st.sampled_from(["cases.decided", "cases.received"]),
    day=st.dates(min_value=date(2026, 1, 25), max_value=date(2026, 3, 5)),
    from_city=st.sampled_from(["310000", "320500"]),
    to_city=st.sampled_from(["320500", "330100"]),
    jurisdiction=st.sampled_from(["320000", "330000"]),
    category=st.sampled_from(["online", "joint"]),
    authority=st.sampled_from(["苏州市住房公积金管理中心", "杭州市医保局"]),
    matter=st.sampled_from(["YRD-GJJ-0002", "YRD-YB-0001"]),
)
FACTS = st.lists(
    st.builds(
        Fact,
        key=KEYS,
        n=st.integers(1, 3),
        total=st.integers(0, 1),
        extra=st.integers(-5, 10**6),
        days=st.one_of(st.none(), st.integers(0, 130)),
        ckey=st.integers(0, 2**32 - 1),
    ),
    max_size=50,
)

Row = tuple[int, int, int, int, dict[int, int]]


def stored_level(session: Session, level: str) -> dict[tuple[object, ...], Row]:
    """What dash_month / dash_month_hist hold for `level`: key → (n, total, extra, the
    sum of the events' keys, hist)."""
    m, h = cells.MONTH, cells.MONTH_HIST
    out: dict[tuple[object, ...], Row] = {}
    ids: dict[int, tuple[object, ...]] = {}
    q = select(m.c.id, m.c.indicator, m.c.month, *(m.c[d] for d in REST), m.c.n, m.c.total)
    q = q.add_columns(m.c.extra, m.c.ckey).where(m.c.origin == "", m.c.level == level)
    for row in session.execute(q):
        key = tuple(row[1 : 3 + len(REST)])
        ids[row.id] = key
        out[key] = (row.n, row.total, row.extra, row.ckey, {})
    q = select(h.c.month_id, h.c.bucket, h.c.n).join(m, m.c.id == h.c.month_id)
    for month_id, bucket, n in session.execute(q.where(m.c.origin == "", m.c.level == level)):
        out[ids[month_id]][4][int(bucket)] = int(n)
    return out


def expected_level(
    facts: list[Fact], kept: tuple[str, ...], timed: bool = True
) -> dict[tuple[object, ...], Row]:
    """The facts grouped by month and the dimensions `kept` ("" in the others); the
    histograms only if `timed` (a level of UNTIMED_LEVELS keeps none)."""
    out: dict[tuple[object, ...], Row] = {}
    for f in facts:
        k = f.key
        key = (
            k.indicator,
            k.day.replace(day=1),
            *(getattr(k, d) if d in kept else "" for d in REST),
        )
        n, total, extra, ckey, hist = out.get(key, (0, 0, 0, 0, {}))
        if f.days is not None and timed:
            b = min(max(f.days, 0), HIST_CAP)
            hist = {**hist, b: hist.get(b, 0) + 1}
        out[key] = (n + f.n, total + f.total, extra + f.extra, ckey + f.ckey, hist)
    return out


def assert_levels(session: Session, facts: list[Fact], levels: dict[str, tuple[str, ...]]) -> None:
    for level, kept in levels.items():
        want = expected_level(facts, kept, level not in UNTIMED_LEVELS)
        assert stored_level(session, level) == want, level
    # The stages are empty after every fold.
    for t in (DashStage, DashStageMonth, DashEntry):
        assert session.scalar(select(func.count()).select_from(t)) == 0


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(facts=FACTS, cuts=st.lists(st.integers(0, 50), max_size=4))
def test_every_rollup_level_equals_the_facts_grouped_at_that_level(session, facts, cuts):
    cells.forget_origin(session, "")
    bounds = sorted({0, len(facts), *(c for c in cuts if c <= len(facts))})
    for a, b in zip(bounds, bounds[1:], strict=False):
        service.store(session, fold(facts[a:b]), origin="")
    assert_levels(session, facts, LEVELS)
    cells.forget_origin(session, "")


def test_each_level_is_grouped_from_the_stage_or_from_a_finer_level():
    order = cells._level_order()
    assert sorted(name for name, _, _ in order) == sorted(LEVELS)
    seen: dict[str, tuple[str, ...]] = {}
    for name, kept, source in order:
        if source is None:
            # From the stage only when no level grouped before keeps its dimensions.
            assert not any(set(kept) <= set(k) for k in seen.values())
        else:
            assert source in seen and set(kept) <= set(seen[source])
            # A level keeping histograms is never grouped from one that keeps none.
            assert name in UNTIMED_LEVELS or source not in UNTIMED_LEVELS
        seen[name] = kept


def test_a_level_added_to_the_levels_is_folded_like_the_others(session, monkeypatch):
    """Levels are not hard-wired: with two more (one without the category, one with
    only the city pair), every level still equals the facts grouped directly."""
    levels = {
        **LEVELS,
        "x": ("jurisdiction",),
        "y": ("from_city", "to_city"),
    }
    monkeypatch.setattr(cells, "LEVELS", levels)
    order = {name: source for name, _, source in cells._level_order()}
    # x from a finer level; y (the city pair alone, with histograms) from the stage,
    # since the only level keeping the pair, p, keeps no histograms.
    assert order["x"] is not None and order["y"] is None
    facts = [
        Fact(Key("cases.decided", date(2026, 2, d % 27 + 1), "310000", c, j, cat, a, m), days=d)
        for d, (c, j, cat, a, m) in enumerate(
            [
                ("320500", "320000", "online", "苏州市住房公积金管理中心", "YRD-GJJ-0002"),
                ("330100", "330000", "joint", "杭州市医保局", "YRD-YB-0001"),
                ("320500", "320000", "joint", "杭州市医保局", "YRD-GJJ-0002"),
            ]
            * 7
        )
    ]
    facts.append(Fact(Key("cases.received", date(2026, 3, 2), "320500", "330100", "330000")))
    cells.forget_origin(session, "")
    service.store(session, fold(facts[:10]), origin="")
    service.store(session, fold(facts[10:]), origin="")
    assert_levels(session, facts, levels)
    cells.forget_origin(session, "")


@pytest.mark.usefixtures("without_noise")
def test_a_level_without_histograms_is_read_by_no_timed_figure(session):
    """The city-pair level keeps no histogram rows (nothing reads p50/p90 by city pair
    alone); a timed figure needing only its dimensions reads the daily cells, so it
    equals the facts all the same."""
    assert "p" in UNTIMED_LEVELS
    assert service.level_for({"from_city", "to_city"}) == "p"
    assert service.level_for({"from_city", "to_city"}, timed=True) is None
    assert service.level_for({"category"}, timed=True) == "j"
    k = Key("cases.decided", date(2026, 2, 3), "310000", "320500", "320000", "online", "a", "m")
    facts = [Fact(k, days=d) for d in (1, 4, 9)] + [Fact(k._replace(to_city="330100"), days=30)]
    cells.forget_origin(session, "")
    service.store(session, fold(facts), origin="")
    m, h = cells.MONTH, cells.MONTH_HIST
    by_level = dict(
        session.execute(
            select(m.c.level, func.count(h.c.month_id))
            .select_from(m.outerjoin(h, h.c.month_id == m.c.id))
            .group_by(m.c.level)
        ).all()
    )
    assert by_level["p"] == 0 and by_level["j"] > 0
    f = service.Filters(start=date(2026, 2, 1), end=date(2026, 2, 28))
    got = service.grouped(session, f, ["cases.decided"], ("from_city", "to_city"), 1, timed=True)
    assert got[("310000", "320500")].p50 == 4 and got[("310000", "320500")].n == 3
    assert got[("310000", "330100")].p90 == 30
    service.forget(session)
    cells.forget_origin(session, "")


def test_the_sorted_grouping_of_the_daily_cells_is_undone_after_it(session):
    """PostgreSQL: the daily cells are grouped with hash aggregation off; the rest of the
    refresh's transaction (and the pages read in it) plans with the server's setting."""
    if cells.dialect(session) != "postgresql":
        return
    before = session.scalar(select(func.current_setting("enable_hashagg")))
    k = Key("cases.received", date(2026, 2, 3), "310000", "320500", "320000", "online", "a", "m")
    cells.forget_origin(session, "")
    service.store(session, fold([Fact(k)]), origin="")
    assert session.scalar(select(func.current_setting("enable_hashagg"))) == before == "on"
    cells.forget_origin(session, "")
