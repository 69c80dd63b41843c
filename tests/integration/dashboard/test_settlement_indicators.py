"""Outpatient settlements and their reversals (from the audit chain) folded by the
refresh, against an independent DuckDB computation over the settlement and event
tables: count, amount and fund share per day and (insured city → treatment city); a
node counts only the settlements made in the jurisdictions it serves."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import duckdb
from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.dashboard import service
from tongban.medical import service as medical
from tongban.medical import settlement
from tongban.medical.models import Settlement, SettlementEvent
from tongban.medical.service import ItemInput

from builders import make_filing, make_hospital_staff, make_institution, make_insured

INDICATORS = ("medical.settlement", "medical.reversed")


def _settle(session: Session, staff: Any, person: Any, txn: str, items: int) -> Any:
    v = medical.register_visit(session, staff, id_number=person.id_number, visit_no=f"V{txn}")
    medical.upload_items(session, staff, v.id, [ItemInput("T0001", items, 2_500)])
    s, _ = settlement.settle(session, staff, v.id, txn)
    return s


def _cells(session: Session) -> dict[tuple[Any, ...], tuple[int, int, int]]:
    return {
        (k.indicator, k.day, k.from_city, k.to_city, k.jurisdiction): (v.n, v.total, v.extra)
        for k, v in service.local_cells(session).items()
        if k.indicator in INDICATORS
    }


def _duckdb(session: Session, served: set[str]) -> dict[tuple[Any, ...], tuple[int, int, int]]:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE s (id VARCHAR, ic VARCHAR, tc VARCHAR, tj VARCHAR, total BIGINT, fund BIGINT)"
    )
    con.execute("CREATE TABLE e (sid VARCHAR, to_state VARCHAR, ts TIMESTAMP)")
    con.executemany(
        "INSERT INTO s VALUES (?, ?, ?, ?, ?, ?)",
        [
            (str(r.id), r.insured_city, r.treatment_city, r.treatment_jurisdiction, r.total, r.fund)
            for r in session.scalars(select(Settlement))
        ],
    )
    con.executemany(
        "INSERT INTO e VALUES (?, ?, ?)",
        [
            (str(r.settlement_id), r.to_state, r.at.astimezone(UTC).replace(tzinfo=None))
            for r in session.scalars(select(SettlementEvent))
        ],
    )
    rows = con.execute(
        f"""
        SELECT CASE to_state WHEN 'settled' THEN 'medical.settlement'
                             ELSE 'medical.reversed' END,
               CAST(ts + INTERVAL 8 HOUR AS DATE), ic, tc, tj, count(*), sum(total),
               sum(CASE WHEN to_state = 'settled' THEN fund ELSE 0 END)
        FROM e JOIN s ON s.id = e.sid
        WHERE to_state IN ('settled', 'reversed')
          AND tj IN ({", ".join(f"'{j}'" for j in sorted(served))})
        GROUP BY ALL
        """
    ).fetchall()
    return {tuple(r[:5]): (int(r[5]), int(r[6]), int(r[7])) for r in rows}


def test_settlements_and_reversals_equal_a_duckdb_computation(session: Session) -> None:
    shanghai, suzhou = make_institution(session, "310000"), make_institution(session, "320500")
    staff_sh, staff_sz = (
        make_hospital_staff(session, shanghai),
        make_hospital_staff(session, suzhou),
    )
    hefei = make_insured(session, "340100", balance=5_000_000)
    make_filing(session, hefei, "310000")
    make_filing(session, hefei, "320500")
    for i in range(5):
        _settle(session, staff_sh, hefei, f"SH-{i}", i + 1)
    for i in range(3):
        _settle(session, staff_sz, hefei, f"SZ-{i}", 2)
    settlement.reverse(session, staff_sh, "SH-1", reason="收费项目录入错误")
    session.flush()

    service.refresh(session, service.owns_for("310000"))
    got = _cells(session)
    assert got == _duckdb(session, {"310000"})
    assert sum(n for (ind, *_), (n, _, _) in got.items() if ind == "medical.settlement") == 5
    assert sum(n for (ind, *_), (n, _, _) in got.items() if ind == "medical.reversed") == 1
    assert all(t > 0 for _, t, _ in got.values())  # amounts, not just counts

    service.recompute(session, service.owns_for("*"))
    assert _cells(session) == _duckdb(session, {"310000", "320000"})
