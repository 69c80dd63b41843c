"""The maintained stock sums (stock_sums.py) on a real database (SQLite and PostgreSQL):
after any sequence of movements they equal a fresh GROUP BY over the lots, on any day
(units passing their expiry or entering their warning window), and two writers moving
stock of one item at once (real commits, each on its own connection) lose nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from concurrency import BACKENDS, node_on, own_database
from integration.emergency.kit import point
from tongban.emergency import stock, stock_sums
from tongban.emergency.catalogue import catalogue
from tongban.emergency.domain import Movement
from tongban.emergency.models import StockAtPoint, StockByExpiry, StockLot, StockTotal
from tongban.errors import ValidationFailed

DAY = date(2027, 3, 1)
CITIES = ("340100", "340200")
#: Perishable (warning windows of 60 and 90 days) and not.
ITEMS = ("TST-AG", "PPE-SUIT", "LIV-TENT")
#: Expiry dates around DAY and the days the sums are read on: past, on the day, inside
#: and outside each warning window.
EXPIRIES = (
    DAY - timedelta(days=3),
    DAY,
    DAY + timedelta(days=30),
    DAY + timedelta(days=75),
    DAY + timedelta(days=400),
)
MOVEMENTS = (
    Movement.RECEIVE,
    Movement.ISSUE,
    Movement.COUNT,
    Movement.DISPOSE,
    Movement.DISPATCH,
    Movement.AID_IN,
)

step = st.tuples(
    st.integers(0, 3),  # which point (two per city)
    st.sampled_from(ITEMS),
    st.integers(0, len(EXPIRIES) - 1),  # which batch (one expiry each)
    st.sampled_from(MOVEMENTS),
    st.integers(0, 300),
)


def _check(session: Session) -> None:
    """The sums read on several days equal the lots summed afresh; the per-point sums
    equal the lots of each point and item."""
    for day in (DAY - timedelta(days=5), DAY, DAY + timedelta(days=20), DAY + timedelta(days=80)):
        for kw in ({}, {"city_code": CITIES[0]}, {"item_codes": ["TST-AG"]}):
            maintained = stock.aggregate(session, on=day, jurisdictions=["340000"], **kw)  # type: ignore[arg-type]
            fresh = stock.aggregate_of_lots(session, on=day, jurisdictions=["340000"], **kw)  # type: ignore[arg-type]
            assert maintained == fresh, (day, kw)
    by_point = {
        (p, i): int(q)
        for p, i, q in session.execute(
            select(StockLot.point_id, StockLot.item_code, func.sum(StockLot.quantity))
            .group_by(StockLot.point_id, StockLot.item_code)
            .having(func.sum(StockLot.quantity) > 0)
        )
    }
    kept = {
        (p, i): int(q)
        for p, i, q in session.execute(
            select(StockAtPoint.point_id, StockAtPoint.item_code, StockAtPoint.quantity).where(
                StockAtPoint.quantity != 0
            )
        )
    }
    assert kept == by_point
    # Rebuilt from the lots (as migration 0044 backfills), the sums are the same.
    before = _sums(session)
    stock_sums.rebuild(session)
    assert _sums(session) == before


def _sums(session: Session) -> tuple[list[tuple[object, ...]], ...]:
    """Every row of the three sums holding stock (a sum back at zero may keep its row)."""
    return tuple(
        [
            tuple(r)
            for r in session.execute(
                select(*model.__table__.columns)
                .where(model.quantity != 0)
                .order_by(*model.__table__.primary_key)
            )
        ]
        for model in (StockTotal, StockByExpiry, StockAtPoint)
    )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=25))
def test_the_sums_equal_the_lots_after_any_movements(
    session: Session, steps: list[tuple[int, str, int, Movement, int]]
) -> None:
    savepoint = session.begin_nested()
    try:
        points = [point(session, c) for c in CITIES for _ in range(2)]
        for where, item_code, batch, movement, amount in steps:
            item = catalogue().items[item_code]
            expiry = EXPIRIES[batch] if item.perishable else None
            lot = stock.lot_at(session, points[where], item, f"B{batch}", expiry)
            try:
                stock.apply(session, lot, movement, amount, None, "测试")
            except ValidationFailed:
                continue  # refused before anything changed (more taken than held …)
        session.flush()
        _check(session)
    finally:
        savepoint.rollback()


# --- two writers at once -----------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def own_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    yield from own_database(request.param, tmp_path_factory)


def test_two_writers_moving_one_item_at_once_lose_nothing(own_db: Engine, tmp_path: Path) -> None:
    """Two threads, each with its own connection and real commits, move stock of one item
    of one city: at one point (other batches) and at points of their own, receiving and
    issuing. The totals, the points count and the per-expiry sums are those of the lots."""
    node = node_on(own_db, tmp_path)
    item = catalogue().items["TST-AG"]
    with node.session_factory() as s:
        shared = point(s, "340100")
        own = [point(s, "340100"), point(s, "340100")]
        s.commit()
        codes = [shared.code, own[0].code, own[1].code]
    rounds = 15
    barrier = threading.Barrier(2)

    def writer(n: int) -> None:
        barrier.wait(timeout=30)
        for r in range(rounds):
            with node.session_factory() as s:
                for code, batch in ((codes[0], f"W{n}-{r % 3}"), (codes[1 + n], f"A{r % 3}")):
                    where = stock.get_point(s, code)
                    lot = stock.lot_at(s, where, item, batch, DAY + timedelta(days=10 * (r % 3)))
                    stock.apply(s, lot, Movement.RECEIVE, 10 + r, None, "并发入库")
                    if r % 4 == 3:
                        stock.apply(s, lot, Movement.ISSUE, lot.quantity, None, "并发出库")
                s.commit()

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(writer, range(2)))
    with node.session_factory() as s:
        maintained = stock.aggregate(s, on=DAY, city_code="340100", item_codes=[item.code])
        fresh = stock.aggregate_of_lots(s, on=DAY, city_code="340100", item_codes=[item.code])
        assert maintained == fresh
        (row,) = maintained
        # Each batch's last round (12, 13, 14) left stock in it: three points hold some.
        assert row[6] == 3
        total = s.get(StockTotal, ("340100", item.code))
        held = s.scalar(
            select(func.sum(StockLot.quantity)).where(
                StockLot.city_code == "340100", StockLot.item_code == item.code
            )
        )
        assert total is not None and total.quantity == held
