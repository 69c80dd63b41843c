"""A floor under the dashboard's refresh: the time to write only the rows a refresh of
1 million of the bench's events must write — its daily cells, monthly roll-ups and their
histograms — into the real tables (migrated, with all their indexes), in key order, by
plain INSERT … SELECT from tables filled beforehand (not timed). Whatever the refresh
does besides (reading the audit chain, staging, grouping), it cannot take less than this
on the same machine, so an aim below it needs fewer rows or indexes, not faster SQL.

    python benchmarks/bench_dashboard_writes.py [--pg-url URL]
        [--cells 428532] [--rollups 153845] [--hist 142854] [--rollup-hist 207874]

The defaults are the row counts `bench_dashboard.py` writes at 1,000,000 events since
session 13 (the levels j, a, m, p, c; no histogram rows for p). Session 12's first
tree wrote 88,816 roll-ups and 207,115 of their histogram rows (no level c), its last
153,845 and 321,010 (c, and p with histograms); until session 12 the whole-key level
`*` too: 516,198 roll-ups and 350,249 histogram rows. The options reproduce any of them. The
keys are synthetic but shaped like the bench's (41-city pairs, three modes, a few hundred
authorities, two thousand matters, a year of days; roll-ups spread evenly over the
levels of `domain.LEVELS`).
Without --pg-url the database is a SQLite file in a temporary directory (WAL, as the app
opens it). Prints each table's seconds and the database's CPU in its statement (PostgreSQL:
the backend's, from /proc; SQLite: this process's, in which SQLite runs).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection

from tongban.dashboard.domain import LEVELS
from tongban.db import make_engine
from tongban.migrate import upgrade

KEY = "from_city, to_city, jurisdiction, category, authority, matter"
CELL_COLS = f"origin, indicator, day, {KEY}"
ROLLUP_COLS = f"origin, level, indicator, month, {KEY}"


@contextlib.contextmanager
def database(pg_url: str | None) -> Iterator[str]:
    if pg_url:
        from tongban.devserver import pg_database

        with pg_database(pg_url, "bench_dashboard_writes") as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{tmp}/writes.db"


def numbers(conn: Connection, n: int) -> str:
    """A FROM clause yielding g = 1 … n."""
    if conn.dialect.name == "postgresql":
        return f"generate_series(1, {n}) AS s(g)"
    return f"(WITH RECURSIVE r(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM r WHERE g < {n}) SELECT g FROM r)"


def fill_sources(conn: Connection, cells: int, rollups: int, hist: int, rollup_hist: int) -> None:
    pg = conn.dialect.name == "postgresql"
    pad = (lambda e: f"lpad(({e})::text, 6, '0')") if pg else (lambda e: f"printf('%06d', {e})")
    day = (
        (lambda e: f"(date '2026-01-01' + ({e}))")
        if pg
        else (lambda e: f"date('2026-01-01', '+' || ({e}) || ' days')")
    )
    key = (
        f"{pad('(g * 7) % 41 + 310000')} AS from_city, {pad('((g / 41) * 13) % 41 + 320000')} AS to_city,"
        " '320000' AS jurisdiction,"
        " CASE g % 3 WHEN 0 THEN 'online' WHEN 1 THEN 'window' ELSE 'joint' END AS category,"
        " '某市某某局第' || (g % 400) || '分局' AS authority,"
        f" 'YRD-' || {pad('g % 2000')} || '-事项名称' AS matter,"
        " 1 AS n, 0 AS total, 0 AS extra"
    )
    indicator = "'indicator_' || (g % 5) AS indicator"
    # The roll-ups spread evenly over the levels of this tree (domain.LEVELS).
    names = sorted(LEVELS)
    whens = " ".join(f"WHEN {i} THEN '{name}'" for i, name in enumerate(names))
    level = f"CASE g % {len(names)} {whens} END"
    run = [
        f"CREATE TABLE src_cell AS SELECT '' AS origin, {indicator}, {day('g % 365')} AS day,"
        f" {key} FROM {numbers(conn, cells)}",
        f"CREATE TABLE src_rollup AS SELECT '' AS origin, {level} AS level, {indicator},"
        f" {day('(g % 12) * 31')} AS month, {key} FROM {numbers(conn, rollups)}",
    ]
    for name, rows in (("hist", hist), ("rollup_hist", rollup_hist)):
        run.append(
            f"CREATE TABLE src_{name} AS SELECT g / 3 + 1 AS owner, g % 3 AS bucket, 1 AS n"
            f" FROM {numbers(conn, rows)}"
        )
    for sql in run:
        conn.execute(text(sql))  # (text(): a literal % is escaped for psycopg)


def backend_cpu(conn: Connection) -> float | None:
    """CPU seconds of the database so far: the PostgreSQL backend's (from /proc), or on
    SQLite this process's (SQLite runs in it)."""
    if conn.dialect.name != "postgresql":
        return time.process_time()
    try:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pg-url", default=None)
    p.add_argument("--cells", type=int, default=428_532)
    p.add_argument("--rollups", type=int, default=153_845)
    p.add_argument("--hist", type=int, default=142_854)
    p.add_argument("--rollup-hist", type=int, default=207_874)
    a = p.parse_args()
    sums = "n, total, extra"
    # (label, target table, its columns, source table, the source's columns in key order)
    steps = (
        ("daily cells (dash_cell)", "dash_cell", f"{CELL_COLS}, {sums}", "src_cell", CELL_COLS),
        (
            "monthly roll-ups (dash_month)",
            "dash_month",
            f"{ROLLUP_COLS}, {sums}",
            "src_rollup",
            ROLLUP_COLS,
        ),
        (
            "cell histograms (dash_hist)",
            "dash_hist",
            "cell_id, bucket, n",
            "src_hist",
            "owner, bucket",
        ),
        (
            "roll-up histograms (dash_month_hist)",
            "dash_month_hist",
            "month_id, bucket, n",
            "src_rollup_hist",
            "owner, bucket",
        ),
    )
    with database(a.pg_url) as url:
        upgrade(url)
        engine = make_engine(url)
        with engine.begin() as conn:
            fill_sources(conn, a.cells, a.rollups, a.hist, a.rollup_hist)
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
                conn.exec_driver_sql("CHECKPOINT")
        print(f"dashboard writes ({engine.dialect.name}): rows in key order, plain INSERT … SELECT")
        wall_all = 0.0
        cpu_all: float | None = 0.0
        with engine.connect() as conn:
            tx = conn.begin()
            for label, table, cols, source, key in steps:
                source_cols = (
                    f"{key}, {sums}" if source in ("src_cell", "src_rollup") else f"{key}, n"
                )
                c0, t0 = backend_cpu(conn), time.perf_counter()
                done = conn.exec_driver_sql(
                    f"INSERT INTO {table} ({cols}) SELECT {source_cols} FROM {source} ORDER BY {key}"
                )
                wall = time.perf_counter() - t0
                c1 = backend_cpu(conn)
                cpu = None if c0 is None or c1 is None else c1 - c0
                wall_all += wall
                cpu_all = None if cpu is None or cpu_all is None else cpu_all + cpu
                shown = "" if cpu is None else f", database CPU {cpu:.2f} s"
                print(f"  {label:38} {done.rowcount:>9,} rows {wall:7.2f} s{shown}")
            t0 = time.perf_counter()
            tx.commit()
            wall_all += time.perf_counter() - t0
        shown = "" if cpu_all is None else f", database CPU {cpu_all:.2f} s (statements)"
        print(f"  {'all, with the commit':38} {'':>14} {wall_all:7.2f} s{shown}")
        print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f}")
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
