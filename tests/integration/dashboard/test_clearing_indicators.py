"""Clearing balances (跨地区清算) on the dashboard: per closed period and (insured city →
treatment city), the claims net of reversals (their magnitude: what the small-cell
rule counts), the fund amount owed and the amount owed
after netting with the opposite direction — against an independent DuckDB computation
over the settlements themselves; an open period is not counted until it closes, and a
closed one is counted once however often the refresh runs."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import duckdb
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.dashboard import service
from tongban.dashboard.domain import Indicator
from tongban.medical import clearing_service as cs
from tongban.medical import service as medical
from tongban.medical import settlement
from tongban.medical.models import Settlement
from tongban.medical.service import ItemInput

from builders import make_filing, make_hospital_staff, make_institution, make_insured

IND = Indicator.CLEARING.value
CT = [ItemInput("T0006", 1, 250_000), ItemInput("T0001", 1, 2_500)]
#: (insured city, treatment city, period)
PLAN = [
    ("340100", "310000", "2020-03"),
    ("340100", "310000", "2020-03"),
    ("340100", "320500", "2020-03"),
    ("310000", "320500", "2020-03"),
    ("320500", "310000", "2020-03"),  # the opposite direction: nets against the one above
    ("310000", "330100", "2020-03"),
    ("320100", "320500", "2020-03"),  # inside 江苏, between two cities
    ("330100", "310000", "2020-04"),
    ("340100", "310000", "2020-04"),
]


def _world(session: Session) -> list[tuple[Any, Settlement]]:
    desks = {
        city: make_hospital_staff(session, make_institution(session, city, level=3))
        for city in ("310000", "320500", "330100")
    }
    people = {
        city: make_insured(session, city, balance=100_000)
        for city in ("340100", "310000", "320500", "320100", "330100")
    }
    for p in people.values():
        make_filing(session, p, city=None)
    done = []
    for n, (home, where, period) in enumerate(PLAN):
        staff = desks[where]
        v = medical.register_visit(
            session, staff, id_number=people[home].id_number, visit_no=f"V{n}"
        )
        medical.upload_items(session, staff, v.id, CT)
        s, _ = settlement.settle(session, staff, v.id, f"T{n}")
        s.period = period
        assert settlement.sync_with_insured(session, s)
        done.append((staff, s))
    session.flush()
    return done


def _cells(session: Session) -> dict[tuple[Any, ...], tuple[int, int, int]]:
    return {
        (k.day, k.from_city, k.to_city, k.jurisdiction): (v.n, v.total, v.extra)
        for k, v in service.local_cells(session).items()
        if k.indicator == IND
    }


def _duckdb(
    session: Session, closed: set[str], served: set[str] | None
) -> dict[tuple[Any, ...], tuple[int, int, int]]:
    """From the settlements: a claim counts (+1, +fund) in its period unless reversed in
    that same period; a reversal landing in a later period counts there (−1, −fund);
    only closed periods, only pairs of two different cities."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE s (ic VARCHAR, tc VARCHAR, tj VARCHAR, fund BIGINT, period VARCHAR,"
        " reversed BOOLEAN, rperiod VARCHAR)"
    )
    con.executemany(
        "INSERT INTO s VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                s.insured_city,
                s.treatment_city,
                s.treatment_jurisdiction,
                s.fund,
                s.period,
                s.status == "reversed",
                s.reversal_period,
            )
            for s in session.scalars(select(Settlement))
        ],
    )
    con.execute("CREATE TABLE closed (period VARCHAR)")
    con.executemany("INSERT INTO closed VALUES (?)", [(p,) for p in sorted(closed)])
    rows = con.execute(
        """
        WITH lines AS (
          SELECT ic, tc, tj, period, 1 AS sign, fund FROM s
          WHERE NOT (reversed AND rperiod = period)
          UNION ALL
          SELECT ic, tc, tj, rperiod, -1, -fund FROM s
          WHERE reversed AND rperiod IS NOT NULL AND rperiod <> period
        ), g AS (
          SELECT period, ic, tc, tj, sum(sign) AS claims, sum(fund) AS amount
          FROM lines WHERE ic <> tc AND period IN (SELECT period FROM closed)
          GROUP BY ALL
        )
        SELECT a.period, a.ic, a.tc, a.tj,
               CASE WHEN a.claims <> 0 THEN abs(a.claims) WHEN a.amount <> 0 THEN 1 ELSE 0 END,
               a.amount,
               a.amount - coalesce(b.amount, 0)
        FROM g a LEFT JOIN g b ON b.period = a.period AND b.ic = a.tc AND b.tc = a.ic
        """
    ).fetchall()
    return {
        (date.fromisoformat(r[0] + "-01"), r[1], r[2], r[3]): (int(r[4]), int(r[5]), int(r[6]))
        for r in rows
        if served is None or r[3] in served
    }


@pytest.mark.usefixtures("without_noise")
def test_closed_periods_balances_equal_a_duckdb_computation(session: Session) -> None:
    txns = _world(session)
    every = service.owns_for("*")
    cs.clear_period(session, "2020-04")  # cleared, still open: not a balance yet
    cs.close_period(session, "2020-03", by="运维")
    service.refresh(session, every, settle=timedelta(0))
    got = _cells(session)
    assert got == _duckdb(session, {"2020-03"}, None)
    assert {k[0] for k in got} == {date(2020, 3, 1)}
    assert got[(date(2020, 3, 1), "340100", "310000", "310000")][:2] == (
        2,
        txns[0][1].fund + txns[1][1].fund,
    )
    sh_sz = got[(date(2020, 3, 1), "310000", "320500", "320000")]
    sz_sh = got[(date(2020, 3, 1), "320500", "310000", "310000")]
    assert sh_sz[2] == -sz_sh[2] == sh_sz[1] - sz_sh[1]  # netted both ways

    # A later reversal of a closed period's claim lands in 2020-04 with the opposite
    # sign; 2020-04 is counted once it closes, 2020-03 is not counted again.
    staff, s = txns[2]
    settlement.reverse(session, staff, s.txn_id, reason="重复收费")
    cs.close_period(session, "2020-04", by="运维")
    service.refresh(session, every, settle=timedelta(0))
    service.refresh(session, every, settle=timedelta(0))
    got = _cells(session)
    assert got == _duckdb(session, {"2020-03", "2020-04"}, None)
    assert got[(date(2020, 4, 1), "340100", "320500", "320000")][:2] == (1, -s.fund)
    april = service.Filters(start=date(2020, 4, 1), end=date(2020, 4, 30), from_city="340100")
    one = service.total(session, april, IND, threshold=10)
    assert one.suppressed and one.total is None  # one reversal's amount is not published
    assert service.total(session, april, IND, threshold=1).n == 2  # a claim, a reversal

    service.recompute(session, every, settle=timedelta(0))
    assert _cells(session) == got
    service.recompute(session, service.owns_for("310000"), settle=timedelta(0))
    assert _cells(session) == _duckdb(session, {"2020-03", "2020-04"}, {"310000"})
    assert _cells(session)  # 上海 is the treatment side of some pairs
