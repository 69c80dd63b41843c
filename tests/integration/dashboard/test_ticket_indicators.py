"""Work orders closed and reopened and the residents' verdicts (满意/不满意) from the
audit chain, folded by the refresh, against an independent DuckDB computation over the
work-order and event tables: per day, city, jurisdiction, joint or single (or the
verdict), authority and category, with closures on time and satisfied verdicts."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import duckdb
from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.dashboard import service
from tongban.tickets import service as tickets
from tongban.tickets.models import TicketEvent, WorkOrder

from builders import make_city_staff, make_officer, make_photo, make_resident, make_work_order

LEAD = "320500-transport"
INDICATORS = ("tickets.closed", "tickets.reopened", "tickets.satisfaction")


def _loop(session: Session, tmp_path: Any, *, reopen: bool) -> None:
    resident = make_resident(session, city="320500")
    wo = make_work_order(session, resident)
    officer = make_officer(session, LEAD)
    dispatcher = make_city_staff(session, "dispatcher", "320500")
    tickets.act(session, officer, wo.id, "accept")
    rounds = 2 if reopen else 1
    for r in range(rounds):
        tickets.act(session, officer, wo.id, "start")
        photo = make_photo(session, officer, tmp_path)
        tickets.act(session, officer, wo.id, "fix", "已修复", photo_ids=[photo.id])
        tickets.act(session, dispatcher, wo.id, "verify")
        last = r == rounds - 1
        tickets.act(session, resident, wo.id, "satisfied" if last else "unsatisfied", "再看看")


def _cells(session: Session) -> dict[tuple[Any, ...], tuple[int, int]]:
    return {
        (k.indicator, k.day, k.from_city, k.jurisdiction, k.category, k.authority, k.matter): (
            v.n,
            v.total,
        )
        for k, v in service.local_cells(session).items()
        if k.indicator in INDICATORS
    }


def _duckdb(session: Session) -> dict[tuple[Any, ...], tuple[int, int]]:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t (id VARCHAR, city VARCHAR, j VARCHAR, auth VARCHAR, cat VARCHAR,"
        " joint BOOLEAN, on_time BOOLEAN, replica BOOLEAN)"
    )
    con.execute("CREATE TABLE e (tid VARCHAR, action VARCHAR, to_state VARCHAR, ts TIMESTAMP)")
    con.executemany(
        "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                str(r.id),
                r.city_code,
                r.jurisdiction_code,
                r.authority_name or "",
                r.category_code or "",
                bool(r.joint),
                bool(r.on_time),
                bool(r.replica),
            )
            for r in session.scalars(select(WorkOrder))
        ],
    )
    con.executemany(
        "INSERT INTO e VALUES (?, ?, ?, ?)",
        [
            (str(r.ticket_id), r.action, r.to_state, r.at.astimezone(UTC).replace(tzinfo=None))
            for r in session.scalars(select(TicketEvent))
        ],
    )
    rows = con.execute(
        """
        SELECT 'tickets.' || to_state, CAST(ts + INTERVAL 8 HOUR AS DATE), city, j,
               CASE WHEN joint THEN 'joint' ELSE 'single' END, auth, cat, count(*),
               sum(CASE WHEN to_state = 'closed' AND on_time THEN 1 ELSE 0 END)
        FROM e JOIN t ON t.id = e.tid
        WHERE to_state IN ('closed', 'reopened') AND NOT replica
        GROUP BY ALL
        UNION ALL
        SELECT 'tickets.satisfaction', CAST(ts + INTERVAL 8 HOUR AS DATE), city, j, action,
               auth, cat, count(*), sum(CASE WHEN action = 'satisfied' THEN 1 ELSE 0 END)
        FROM e JOIN t ON t.id = e.tid
        WHERE action IN ('satisfied', 'unsatisfied') AND NOT replica
        GROUP BY ALL
        """
    ).fetchall()
    return {tuple(r[:7]): (int(r[7]), int(r[8])) for r in rows}


def test_work_orders_closed_and_reopened_equal_a_duckdb_computation(
    session: Session, tmp_path: Any
) -> None:
    _loop(session, tmp_path, reopen=True)
    _loop(session, tmp_path, reopen=False)
    _loop(session, tmp_path, reopen=False)
    session.flush()
    service.refresh(session, service.owns_for("320000"))
    got = _cells(session)
    assert got == _duckdb(session)
    assert sum(n for (ind, *_), (n, _) in got.items() if ind == "tickets.closed") == 3
    assert sum(n for (ind, *_), (n, _) in got.items() if ind == "tickets.reopened") == 1
    verdicts = [v for (ind, *_), v in got.items() if ind == "tickets.satisfaction"]
    assert (sum(n for n, _ in verdicts), sum(t for _, t in verdicts)) == (4, 3)  # 3 of 4
    service.recompute(session, service.owns_for("310000"))
    assert _cells(session) == {}  # 苏州's work orders are not 上海's node's to count
