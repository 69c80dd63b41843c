"""The dashboard: time to fold 1 million new events into the aggregates (the refresh job)
and the dashboard page's time with a year of data for the 41 cities, beside a plain
DuckDB aggregation of the same events (the ratio refresh/DuckDB is the figure).

The events are generated (deterministic, seeded): cases of the catalogue's matters
between the 41 cities over the last 365 days, each with its audit chain entries as the
case context writes them (submit, accept, start_review, approve, issue_result,
deliver, rate; no rating rows, so rate entries are read and skipped, and DuckDB leaves
them out), so that the refresh reads exactly what it reads in production — the
chain after its watermark and the cases named — and DuckDB groups the same events by
the same key (indicator, day, city pair, jurisdiction, mode, authority, matter).

    python benchmarks/bench_dashboard.py [--events N] [--quick] [--pg-url URL]
        [--requests 50] [--more 100000]

The timed refresh folds into a node holding no cells yet (a new install, `recompute`):
the fold's plain-insert path. After the pages, --more events are generated and a second
refresh adds them to the cells held (the periodic refresh's upsert path), printed apart.
The pages requested in turn: the front page over a year (by month) and over 30 days,
a year of cases decided by week, and the drill-downs to the authority and to the matter
with the most cases (a year; their figures by mode or city pair are kept by no roll-up
level, so they read the daily cells); p50/p95 per page are printed too.
Without --pg-url the database is a SQLite file in a temporary directory. --quick:
100,000 events. Writes var/bench/dashboard-{sqlite|postgresql}.json.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import duckdb

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench" / "dashboard-{database}.json"
STEPS = ("submit", "accept", "start_review", "approve", "issue_result", "deliver", "rate")
MODES = (("online", "online"), ("proxy", "window"), ("joint", "online"))
PASSWORD = "bench-password-1234"


@contextlib.contextmanager
def database(pg_url: str | None) -> Iterator[str]:
    if pg_url:
        from tongban.devserver import pg_database

        with pg_database(pg_url, "bench_dashboard") as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{tmp}/bench.db"


def generate(
    session: Any, n_events: int, today: date, seed: int = 20261129
) -> tuple[list[tuple[Any, ...]], int]:
    """Cases and their chain entries, bulk-inserted after the chain's head (if any);
    returns the (case, action, at) rows for DuckDB and the number of entries."""
    from sqlalchemy import insert, select, update

    from tongban.audit.domain import typed_fields
    from tongban.audit.models import AuditEntry, AuditHead
    from tongban.cases.models import Case
    from tongban.catalog.models import Matter
    from tongban.regions.models import Authority, City

    rng = random.Random(seed)
    cities = [(c.code, c.jurisdiction_code) for c in session.scalars(select(City))]
    authorities = list(session.scalars(select(Authority).where(Authority.city_code.is_not(None))))
    by_city: dict[str, list[Authority]] = {}
    for a in authorities:
        by_city.setdefault(str(a.city_code), []).append(a)
    matters = list(session.scalars(select(Matter)))[:20]
    n_cases = n_events // len(STEPS) + 1
    start = datetime.combine(today - timedelta(days=364), datetime.min.time(), UTC)
    cases, entries, rows = [], [], []
    head = session.get(AuditHead, 1)
    first = seq = head.seq if head is not None else 0
    for _ in range(n_cases):
        cid = uuid.uuid4()
        fc, _fj = rng.choice(cities)
        tc, tj = rng.choice(cities)
        auths = by_city.get(tc) or authorities
        auth = rng.choice(auths)
        m = rng.choice(matters)
        mode, channel = rng.choice(MODES)
        submitted = start + timedelta(seconds=rng.randrange(364 * 86400))
        accepted = submitted + timedelta(hours=rng.randrange(1, 48))
        cases.append(
            {
                "id": cid,
                "number": cid.hex[:24],
                "matter_code": m.code,
                "matter_name": m.name[:120],
                "applicant_type": "resident",
                "applicant_name": "某某",
                "applicant_identifier": "0" * 18,
                "channel": channel,
                "mode": mode,
                "receiving_jurisdiction": _fj,
                "receiving_city": fc,
                "identity_verified": True,
                "competent_jurisdiction": tj,
                "competent_city": tc,
                "authority_id": auth.id,
                "authority_name": auth.name,
                "state": "rated",
                "handoff": "done",
                "form_data": {},
                "consent": True,
                "delivery_method": "electronic",
                "time_limit_days": 10,
                "submitted_at": submitted,
                "accepted_at": accepted,
                "deadline_flag": "ok",
                "updated_at": submitted,
                "version": 1,
                "event_seq": len(STEPS),
            }
        )
        at = submitted
        for i, action in enumerate(STEPS):
            if seq >= first + n_events:
                break
            seq += 1
            if action == "approve":
                at = accepted + timedelta(days=rng.randrange(0, 20))
            elif i:
                at = at + timedelta(hours=rng.randrange(1, 24))
            body = {"seq": i + 1, "action": action, "to_state": action, "at": at.isoformat()}
            body_text = json.dumps(body, separators=(",", ":"))
            entries.append(
                {
                    # The typed columns, as the chain's writers fill them (migration 0058).
                    **typed_fields(f"case:{cid}", body_text),
                    "seq": seq,
                    "at": at,
                    "kind": "case.event",
                    "subject": f"case:{cid}",
                    "actor": "system",
                    "body": body_text,
                    "alg": "sha-256",
                    "prev_hash": "0" * 64,
                    "hash": f"{seq:064x}",
                }
            )
            rows.append((str(cid), action, at.replace(tzinfo=None)))
        if len(cases) >= 5000:
            session.execute(insert(Case), cases)
            session.execute(insert(AuditEntry), entries)
            cases, entries = [], []
    if cases:
        session.execute(insert(Case), cases)
    if entries:
        session.execute(insert(AuditEntry), entries)
    if head is None:
        session.add(AuditHead(id=1, seq=seq, hash=f"{seq:064x}"))
    else:
        session.execute(
            update(AuditHead).where(AuditHead.id == 1).values(seq=seq, hash=f"{seq:064x}")
        )
    session.flush()
    return rows, seq - first


def duckdb_baseline(
    session: Any, events: list[tuple[Any, ...]], requests: int = 20
) -> dict[str, Any]:
    """The same aggregation in DuckDB over the same events and cases (from memory)."""
    from sqlalchemy import select

    from tongban.cases.models import Case

    cases = session.execute(
        select(
            Case.id,
            Case.mode,
            Case.channel,
            Case.receiving_city,
            Case.competent_city,
            Case.competent_jurisdiction,
            Case.authority_name,
            Case.matter_code,
            Case.accepted_at,
        )
    ).all()
    t0 = time.perf_counter()
    con = duckdb.connect()
    with tempfile.TemporaryDirectory() as tmp:
        ev_path, c_path = Path(tmp) / "ev.csv", Path(tmp) / "c.csv"
        with ev_path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["case_id", "action", "ts"])
            w.writerows((e[0], e[1], e[2].isoformat(sep=" ")) for e in events)
        with c_path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "mode", "channel", "rc", "cc", "cj", "auth", "matter", "acc"])
            w.writerows(
                (
                    str(c.id),
                    c.mode,
                    c.channel,
                    c.receiving_city,
                    c.competent_city,
                    c.competent_jurisdiction,
                    c.authority_name,
                    c.matter_code,
                    c.accepted_at.replace(tzinfo=None).isoformat(sep=" "),
                )
                for c in cases
            )
        con.execute(f"CREATE TABLE ev AS SELECT * FROM read_csv('{ev_path}', header=true)")
        con.execute(
            f"CREATE TABLE c AS SELECT * FROM read_csv('{c_path}', header=true, types="
            "{'rc': 'VARCHAR', 'cc': 'VARCHAR', 'cj': 'VARCHAR', 'matter': 'VARCHAR'})"
        )
    load = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_cells = con.execute(
        """
        SELECT count(*) FROM (
          SELECT CASE action WHEN 'submit' THEN 'cases.received' WHEN 'approve' THEN 'cases.decided'
                             ELSE 'cases.delivered' END AS ind,
                 CAST(ts + INTERVAL 8 HOUR AS DATE) AS day, rc, cc, cj,
                 CASE WHEN mode = 'joint' THEN 'joint'
                      WHEN mode = 'proxy' OR channel = 'window' THEN 'window' ELSE 'online' END,
                 auth, matter, count(*) AS n,
                 histogram(CASE WHEN action = 'approve'
                   THEN date_diff('day', CAST(acc + INTERVAL 8 HOUR AS DATE),
                                         CAST(ts + INTERVAL 8 HOUR AS DATE)) END) AS h
          FROM ev JOIN c ON c.id = ev.case_id
          WHERE action IN ('submit', 'approve', 'deliver')
          GROUP BY ALL)
        """
    ).fetchone()
    seconds = time.perf_counter() - t0
    # What the year's page asks, straight from the events (no aggregates kept): the
    # headline counts, the city-pair matrix, the trend by month and the authorities'
    # ranking with p50/p90 of handling days — timed like the page, `requests` times.
    page_sql = [
        "SELECT action, count(*) FROM ev WHERE action IN ('submit','approve','deliver') GROUP BY 1",
        "SELECT rc, cc, count(*) FROM ev JOIN c ON c.id = ev.case_id WHERE action = 'submit' "
        "GROUP BY ALL",
        "SELECT date_trunc('month', ts + INTERVAL 8 HOUR), count(*) FROM ev "
        "WHERE action = 'submit' GROUP BY 1",
        "SELECT auth, count(*), quantile_disc(d, 0.5), quantile_disc(d, 0.9) FROM ("
        " SELECT auth, date_diff('day', CAST(acc + INTERVAL 8 HOUR AS DATE),"
        "   CAST(ts + INTERVAL 8 HOUR AS DATE)) AS d FROM ev JOIN c ON c.id = ev.case_id"
        " WHERE action = 'approve') GROUP BY 1 ORDER BY 2 DESC",
    ]
    page_times = []
    for _ in range(requests):
        t1 = time.perf_counter()
        for sql in page_sql:
            con.execute(sql).fetchall()
        page_times.append((time.perf_counter() - t1) * 1000)
    return {
        "seconds": seconds,
        "load_seconds": load,
        "cells": n_cells[0] if n_cells else 0,
        "page_p50_ms": percentile(page_times, 0.5),
        "page_p95_ms": percentile(page_times, 0.95),
    }


@contextlib.contextmanager
def statement_timer(engine: Any, spent: list[tuple[float, str]]) -> Iterator[None]:
    """Append (seconds, SQL) of every statement `engine` runs meanwhile (any thread)."""
    from sqlalchemy import event

    began: list[float] = []

    def _before(*a: Any) -> None:
        began.append(time.perf_counter())

    def _after(conn: Any, cursor: Any, statement: str, *a: Any) -> None:
        spent.append((time.perf_counter() - began.pop(), " ".join(statement.split())))

    event.listen(engine, "before_cursor_execute", _before)
    event.listen(engine, "after_cursor_execute", _after)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", _before)
        event.remove(engine, "after_cursor_execute", _after)


def print_statements(title: str, spent: list[tuple[float, str]], top: int) -> None:
    """The SQL time of `spent` and its `top` slowest statements, on stderr."""
    sql = sum(d for d, _ in spent) * 1000
    print(f"--- {title}, SQL {sql:.0f} ms in {len(spent)} statements", file=sys.stderr)
    for d, text in sorted(spent, reverse=True)[:top]:
        print(f"{d * 1000:9.1f} ms  {text[:300]}", file=sys.stderr)


def server_cpu_seconds(session: Any) -> float | None:
    """CPU seconds used so far by this session's PostgreSQL backend (user + system), read
    from /proc when the server runs on this machine; None on SQLite or when unreadable.
    On PostgreSQL the refresh's work is in the server, so this is its CPU figure."""
    from sqlalchemy import text

    if session.get_bind().dialect.name != "postgresql":
        return None
    try:
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def workers_cpu_seconds(session: Any) -> float | None:
    """CPU seconds used so far by the PostgreSQL server's processes other than this
    session's backend (user + system, read from /proc; None on SQLite or when
    unreadable): its live children (the other backends — a large refresh's stage and
    roll-up groupings run on two of them, `cells.Stage` — and the background processes)
    and its ended ones (the postmaster's reaped children: a refresh's parallel workers
    end with each statement). The difference over the refresh is what the server spent
    beside the refresh's backend — including autovacuum's and the checkpointer's, the
    only other activity of this bench's server."""
    from sqlalchemy import text

    if session.get_bind().dialect.name != "postgresql":
        return None
    tck = os.sysconf("SC_CLK_TCK")
    try:
        pid = int(session.execute(text("SELECT pg_backend_pid()")).scalar())
        parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
        fields = Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()
        total = int(fields[13]) + int(fields[14])
    except (OSError, IndexError, ValueError, TypeError):
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == pid:
            continue
        try:
            f = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # ended meanwhile: its time is in the parent's reaped children
        if f[1] == parent:
            total += int(f[11]) + int(f[12])
    return total / tck


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


@dataclass
class PageTimes:
    """Wall and CPU ms of page requests, and the cyclic garbage collector's collections
    during them: count per generation and the CPU ms of the full (generation 2) ones."""

    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    collections: dict[int, int] = field(default_factory=dict)
    full_cpu_ms: list[float] = field(default_factory=list)

    def measure(self, client: Any, path: str, headers: dict[str, str]) -> None:
        began: list[float] = []

        def watch(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                began.append(time.process_time())
                return
            generation = int(info["generation"])
            self.collections[generation] = self.collections.get(generation, 0) + 1
            if generation == 2 and began:
                self.full_cpu_ms.append((time.process_time() - began[-1]) * 1000)

        gc.callbacks.append(watch)
        t1, c1 = time.perf_counter(), time.process_time()
        try:
            resp = client.get(path, headers=headers)
        finally:
            gc.callbacks.remove(watch)
        self.times.append((time.perf_counter() - t1) * 1000)
        self.cpu.append((time.process_time() - c1) * 1000)
        resp.raise_for_status()

    def summary(self) -> dict[str, Any]:
        return {
            "p50_ms": percentile(self.times, 0.5),
            "p95_ms": percentile(self.times, 0.95),
            "cpu_p50_ms": percentile(self.cpu, 0.5),
            "cpu_p95_ms": percentile(self.cpu, 0.95),
            "collections": {str(g): n for g, n in sorted(self.collections.items())},
            "full_collections_cpu_ms": round(sum(self.full_cpu_ms), 1),
        }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--pg-url", default=None)
    p.add_argument("--requests", type=int, default=50)
    p.add_argument(
        "--more",
        type=int,
        default=100_000,
        help="after the pages, generate this many more events and time a second refresh "
        "that adds them to the cells already held (0: skip)",
    )
    p.add_argument(
        "--profile", action="store_true", help="cProfile one request of each page (stderr)"
    )
    p.add_argument(
        "--gc-ab",
        action="store_true",
        help="also --requests page requests with the start-up objects not frozen "
        "(gc.unfreeze()), in blocks taking turns with the frozen ones",
    )
    args = p.parse_args()
    n = 100_000 if args.quick else args.events
    load_start = os.getloadavg()[0]
    today = date.today()

    from fastapi.testclient import TestClient
    from sqlalchemy import func, select

    from tongban.catalog import service as catalog
    from tongban.config import Settings
    from tongban.contexts import build_node
    from tongban.dashboard import service
    from tongban.dashboard.models import DashCell, DashHist, DashMonth, DashMonthHist
    from tongban.db import make_engine, session_factory
    from tongban.identity import service as identity
    from tongban.migrate import upgrade
    from tongban.regions import service as regions
    from tongban.web.app import create_app

    with database(args.pg_url) as url, contextlib.ExitStack() as stack:
        upgrade(url)
        engine = make_engine(url)
        settings = Settings(database_url=url, embedded_worker=False, secret_key="bench")
        node = build_node(settings, session_factory(engine))
        with node.transaction() as s:
            regions.load_reference_data(s)
            catalog.load_catalogue(s)
            identity.create_account(
                s, username="boss", password=PASSWORD, role="supervisor", display_name="督查"
            )
        t0 = time.perf_counter()
        with node.transaction() as s:
            events, n_entries = generate(s, n, today)
        gen = time.perf_counter() - t0
        print(f"generated {n_entries:,} events in {gen:.1f} s", file=sys.stderr)

        spent: list[tuple[float, str]] = []
        timer = statement_timer(engine, spent) if args.profile else contextlib.nullcontext()
        t0, c0 = time.perf_counter(), time.process_time()
        with timer, node.transaction() as s:
            server0, workers0 = server_cpu_seconds(s), workers_cpu_seconds(s)
            r = service.refresh(s, service.owns_for("*"), settle=timedelta(0))
            server1, workers1 = server_cpu_seconds(s), workers_cpu_seconds(s)
        refresh_s, refresh_cpu = time.perf_counter() - t0, time.process_time() - c0
        server_cpu = _diff(server0, server1)
        workers_cpu = _diff(workers0, workers1)
        if args.profile:
            print_statements(f"refresh ({refresh_s:.1f} s)", spent, 16)
        with node.session_factory() as s:
            baseline = duckdb_baseline(s, events, args.requests)
            cells = int(
                s.scalar(select(func.count()).select_from(DashCell).where(DashCell.origin == ""))
                or 0
            )
            months = int(s.scalar(select(func.count()).select_from(DashMonth)) or 0)
            per_level = {
                str(level): int(count)
                for level, count in s.execute(
                    select(DashMonth.level, func.count()).group_by(DashMonth.level)
                )
            }
            hist_rows = {
                name: int(s.scalar(select(func.count()).select_from(t)) or 0)
                for name, t in (("cells", DashHist), ("roll-ups", DashMonthHist))
            }
            # The drill-down pages read figures no roll-up level may keep (an authority's
            # headlines by mode, its city pairs; a matter's): the authority and the
            # matter with the most cases received.
            top = {
                dim: s.scalar(
                    select(getattr(DashCell, dim))
                    .where(DashCell.indicator == "cases.received")
                    .group_by(getattr(DashCell, dim))
                    .order_by(func.sum(DashCell.n).desc())
                    .limit(1)
                )
                for dim in ("authority", "matter")
            }

        # A server holds none of the generated events: drop them before the pages, so
        # the collector walks what a server would hold. The app is started as
        # `tongban serve` starts it (lifespan: with its defaults, gc.freeze()).
        del events
        client = TestClient(create_app(node))
        stack.enter_context(client)
        tok = client.post("/api/v1/auth/token", data={"username": "boss", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {tok.json()['access_token']}"}
        paths = [
            "/dashboard?period=365d&grain=month",
            "/dashboard?period=30d",
            "/dashboard?period=365d&indicator=cases.decided&grain=week",
            f"/dashboard/authority?name={quote(top['authority'] or '')}&period=365d&grain=month",
            f"/dashboard/matter?code={quote(top['matter'] or '')}&period=365d&grain=month",
        ]
        for path in paths:
            client.get(path, headers=headers).raise_for_status()
        # As started: frozen unless TONGBAN_GC_FREEZE=false. --gc-ab: blocks of 5 requests
        # frozen and not frozen (gc.unfreeze()) taking turns, the order reversed every other
        # pair of blocks; the main figures are those of the side the settings start with.
        frozen = gc.get_freeze_count() > 0
        started = "gc frozen" if frozen else "gc not frozen"
        order = ("gc frozen", "gc not frozen") if args.gc_ab else (started,)
        sides = {side: PageTimes() for side in order}
        for i in range(args.requests * len(sides)):
            block = i // 5
            side = order[(block + block // 2) % len(order)]
            if frozen != (side == "gc frozen"):
                if frozen:
                    gc.unfreeze()
                else:
                    gc.freeze()
                frozen = not frozen
            sides[side].measure(client, paths[i % len(paths)], headers)
        times, cpu = sides[started].times, sides[started].cpu
        # Request i asked for paths[i % len(paths)] (one side only: without --gc-ab).
        per_page = (
            {
                path: (
                    percentile(times[k :: len(paths)], 0.5),
                    percentile(times[k :: len(paths)], 0.95),
                )
                for k, path in enumerate(paths)
            }
            if len(sides) == 1
            else {}
        )
        if args.profile:
            # The page runs in the test client's worker thread: time each SQL statement
            # (engine events, any thread) and compare with the request's wall time,
            # and profile the page's parts in that thread (module globals looked up per call)
            import cProfile
            import pstats

            from tongban.dashboard import views

            prof = cProfile.Profile()
            originals = {n: getattr(views, n) for n in ("_context", "render")}
            for n, fn in originals.items():
                setattr(views, n, lambda *a, _fn=fn, **k: prof.runcall(_fn, *a, **k))
            for path in paths:
                spent.clear()
                t1 = time.perf_counter()
                with statement_timer(engine, spent):
                    client.get(path, headers=headers).raise_for_status()
                wall = (time.perf_counter() - t1) * 1000
                print_statements(f"{path}: {wall:.0f} ms", spent, 8)
            for n, fn in originals.items():
                setattr(views, n, fn)
            st = pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative")
            st.print_stats(40)
        # The first refresh folds into an origin holding no cells (its plain inserts);
        # the periodic refresh adds new events to cells already held (its upserts).
        more: dict[str, Any] = {}
        if args.more:
            with node.transaction() as s:
                _rows, more_entries = generate(s, args.more, today, seed=20261130)
            del _rows
            t0, c0 = time.perf_counter(), time.process_time()
            with node.transaction() as s:
                server0, workers0 = server_cpu_seconds(s), workers_cpu_seconds(s)
                r2 = service.refresh(s, service.owns_for("*"), settle=timedelta(0))
                server1, workers1 = server_cpu_seconds(s), workers_cpu_seconds(s)
            more = {
                "events": more_entries,
                "seconds": time.perf_counter() - t0,
                "cpu_seconds": time.process_time() - c0,
                "server_cpu_seconds": _diff(server0, server1),
                "workers_cpu_seconds": _diff(workers0, workers1),
                "cells_touched": r2.cells,
            }
        result = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
            "database": "postgresql" if args.pg_url else "sqlite",
            "events": n_entries,
            "refresh_seconds": refresh_s,
            "refresh_cpu_seconds": refresh_cpu,
            "refresh_server_cpu_seconds": server_cpu,
            "refresh_workers_cpu_seconds": workers_cpu,
            "load_average": os.getloadavg()[0],
            "load_average_start": load_start,
            "refresh_events_per_second": n_entries / refresh_s,
            "cells": cells,
            "monthly_rollups": months,
            "monthly_rollups_per_level": per_level,
            "histogram_rows": hist_rows,
            "pages": paths,
            "duckdb_page_p50_ms": baseline["page_p50_ms"],
            "duckdb_page_p95_ms": baseline["page_p95_ms"],
            "folded_cells": r.cells,
            "duckdb_seconds": baseline["seconds"],
            "duckdb_load_seconds": baseline["load_seconds"],
            "duckdb_cells": baseline["cells"],
            "ratio_refresh_to_duckdb": refresh_s / max(baseline["seconds"], 1e-9),
            "refresh_onto_held_cells": more,
            "page_p50_ms": percentile(times, 0.5),
            "page_p95_ms": percentile(times, 0.95),
            "page_mean_ms": statistics.fmean(times),
            "page_p50_p95_ms_per_page": per_page,
            "page_cpu_p50_ms": percentile(cpu, 0.5),
            "page_cpu_p95_ms": percentile(cpu, 0.95),
            "gc_frozen_at_start": started == "gc frozen",
            "page_gc": {side: t.summary() for side, t in sides.items()},
            "aims": {"refresh_seconds": 10, "page_p95_ms": 300},
            "refresh_aim_met": refresh_s < 10,
            "page_aim_met": percentile(times, 0.95) < 300,
        }
        engine.dispose()
    out = Path(str(OUT).format(database=result["database"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2), "utf-8")
    print(f"{'dashboard (' + result['database'] + ')':40} {'value':>12} {'aim':>8}")
    print(f"{'events folded':40} {n_entries:>12,}")
    print(f"{'refresh s (wall), into no cells yet':40} {refresh_s:>12.2f} {'< 10':>8}")
    verdict = "met" if refresh_s < result["aims"]["refresh_seconds"] else "not met"
    print(f"{'refresh aim (< 10 s wall)':40} {verdict:>12}")
    print(f"{'refresh s (CPU of this process)':40} {refresh_cpu:>12.2f}")
    if args.pg_url:
        shown = "not measured" if server_cpu is None else f"{server_cpu:.2f}"
        print(f"{'refresh s (CPU of the PostgreSQL backend)':40} {shown:>12}")
        shown = "not measured" if workers_cpu is None else f"{workers_cpu:.2f}"
        print(f"{'  and of the other server processes':40} {shown:>12}")
    print(f"{'DuckDB aggregation s (same events)':40} {baseline['seconds']:>12.2f}")
    print(f"{'ratio refresh / DuckDB':40} {result['ratio_refresh_to_duckdb']:>12.1f}")
    print(f"{'cells (refresh) / cells (DuckDB)':40} {cells:>6,} / {baseline['cells']:,}")
    if more:
        print(f"{'then ' + format(more['events'], ',') + ' more events onto held cells'}")
        print(f"{'  refresh s (wall)':40} {more['seconds']:>12.2f}")
        print(f"{'  refresh s (CPU of this process)':40} {more['cpu_seconds']:>12.2f}")
        if args.pg_url:
            cpu2 = more["server_cpu_seconds"]
            shown = "not measured" if cpu2 is None else f"{cpu2:.2f}"
            print(f"{'  refresh s (PostgreSQL backend CPU)':40} {shown:>12}")
            cpu2 = more["workers_cpu_seconds"]
            shown = "not measured" if cpu2 is None else f"{cpu2:.2f}"
            print(f"{'    and of the other server processes':40} {shown:>12}")
        print(f"{'  cells touched':40} {more['cells_touched']:>12,}")
    print(f"{'page p50 ms (a year, 41 cities)':40} {result['page_p50_ms']:>12.1f}")
    print(f"{'page p95 ms':40} {result['page_p95_ms']:>12.1f} {'< 300':>8}")
    verdict = "met" if result["page_aim_met"] else "not met"
    print(f"{'page aim (p95 < 300 ms wall)':40} {verdict:>12}")
    for path, (p50, p95) in per_page.items():
        print(f"  {unquote(path)[:48]:48} p50 {p50:7.1f}  p95 {p95:7.1f} ms")
    print(
        f"{'page CPU p50 / p95 ms':40} {result['page_cpu_p50_ms']:>5.0f} / {result['page_cpu_p95_ms']:.0f}"
    )
    for side, figures in result["page_gc"].items():
        counts = ", ".join(f"gen {g}: {n}" for g, n in figures["collections"].items())
        print(f"{'page GC (' + side + ')':40} {counts or 'none'}")
        print(
            f"{'  full collections CPU ms (all pages)':40} {figures['full_collections_cpu_ms']:>12.0f}"
        )
        if side != started:
            print(
                f"{'  page CPU p50 / p95 ms':40} {figures['cpu_p50_ms']:>5.0f} / "
                f"{figures['cpu_p95_ms']:.0f}  (wall {figures['p50_ms']:.0f} / {figures['p95_ms']:.0f})"
            )
    print(
        f"{'DuckDB page queries p50 / p95 ms':40} "
        f"{baseline['page_p50_ms']:>5.0f} / {baseline['page_p95_ms']:.0f}"
    )
    print(
        f"{'ratio page p95 / DuckDB p95':40} {result['page_p95_ms'] / baseline['page_p95_ms']:>12.1f}"
    )
    print(f"{'monthly roll-up rows (all levels)':40} {months:>12,}")
    for level, count in sorted(per_level.items()):
        print(f"{'  level ' + level:40} {count:>12,}")
    for name, count in hist_rows.items():
        print(f"{'histogram rows (' + name + ')':40} {count:>12,}")
    print(f"{'load average (1 min) at the end':40} {result['load_average']:>12.1f}")
    print(f"{'load average (1 min) at the start':40} {load_start:>12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
