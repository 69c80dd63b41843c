"""Emergency supplies: (1) mutual aid across four nodes on loopback — request → seen by
the giver, commitment → seen by the requester, dispatch → shipment seen by the
requester, p50/p95 of each leg and of the whole — and (2) the reserve queries the
pages and the API use (the aggregate per city and item, a city's filter, an item's
filter) over generated stock of 41 cities × 1,000 items × 100 points, beside plain SQL
on the same database and DuckDB over the same rows (the ratios are the figures).

Part 1 runs four `tongban serve --node …` processes made by `exchange init-local
--nodes 4` (SQLite, demo data): 合肥 asks 上海 for antigen test kits, 上海 commits and
ships from its store, each step polled on the other node's API until it is there.

Part 2 generates the lots (deterministic, seeded) directly into a fresh database: 41
cities, `--items` item codes, `--points` reserve points spread over the cities, one lot
per point and item (41 × 1,000 × 100 means 100 points per city each holding 1,000 items:
4.1 million lots; --quick: 41 cities × 100 items × 10 points, 41,000 lots).

    python benchmarks/bench_emergency.py [--quick] [--rounds N] [--pg-url URL]
        [--items N] [--points N] [--skip-nodes] [--skip-queries]

Without --pg-url part 2 uses a SQLite file in a temporary directory (part 1 always
runs SQLite nodes). Writes var/bench/emergency.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
from _bulk import unindexed

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench" / "emergency.json"
ITEM = "TST-AG"
HEFEI_WHO, SHANGHAI_WHO = "emergency-340100", "emergency-310000"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _env(directory: Path) -> dict[str, str]:
    env = dict(os.environ)
    for line in (directory / ".env").read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value
    env.update(
        {
            "TONGBAN_WORKER_INTERVAL": "0.05",
            "PYTHONUNBUFFERED": "1",
            "TONGBAN_EXCHANGE_BACKOFF": "0.1,0.3,1",
        }
    )
    return env


def _poll(what: str, probe: Callable[[], bool], timeout: float = 60.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if probe():
            return time.perf_counter() - started
        time.sleep(0.01)
    raise RuntimeError(f"{what}: not within {timeout} s")


# --- part 1: four nodes ----------------------------------------------------------------------------


def four_nodes(rounds: int) -> dict[str, Any]:
    from tongban.demo import DEMO_PASSWORD
    from tongban.devserver import ServerProcess, free_port_block
    from tongban.exchange.local import init_local

    root = Path(tempfile.mkdtemp(prefix="tongban-bench-emergency-"))
    base = free_port_block(4, start=25400, step=47)
    init_local(root, 4, base)
    servers: dict[str, ServerProcess] = {}
    for directory in sorted(root.glob("node-*")):
        env = _env(directory)
        node_id, url = env["TONGBAN_NODE_ID"], env["TONGBAN_PUBLIC_URL"]
        argv = [sys.executable, "-m", "tongban", "serve", "--node", node_id]
        servers[env["TONGBAN_SERVED_JURISDICTIONS"]] = ServerProcess(
            node_id, argv, env, url, directory / "server.log"
        )
    legs: dict[str, list[float]] = {"request": [], "commit": [], "dispatch": [], "total": []}
    try:
        for s in servers.values():
            s.start()
        for s in servers.values():
            s.wait_ready(timeout=180)
        anhui, shanghai = servers["340000"].base_url, servers["310000"].base_url
        with httpx.Client(timeout=30) as http:

            def token(url: str, who: str) -> dict[str, str]:
                r = http.post(
                    f"{url}/api/v1/auth/token", data={"username": who, "password": DEMO_PASSWORD}
                )
                r.raise_for_status()
                return {"Authorization": f"Bearer {r.json()['access_token']}"}

            ha, hs = token(anhui, HEFEI_WHO), token(shanghai, SHANGHAI_WHO)
            api_a, api_s = f"{anhui}/api/v1/emergency", f"{shanghai}/api/v1/emergency"
            for i in range(rounds + 1):  # the first round warms up
                t0 = time.perf_counter()
                r = http.post(
                    f"{api_a}/requests",
                    headers=ha,
                    json={
                        "city_code": "340100",
                        "destination_code": "340100-01",
                        "urgency": "immediate",
                        "title": f"基准测试调拨 {i}",
                        "lines": [{"item_code": ITEM, "quantity": 10}],
                        "targets": ["310000"],
                    },
                )
                r.raise_for_status()
                rid = r.json()["id"]
                seen = _poll(
                    "request on 上海",
                    lambda rid=rid: (
                        http.get(f"{api_s}/requests/{rid}", headers=hs).status_code == 200
                    ),
                )
                t1 = time.perf_counter()
                r = http.post(
                    f"{api_s}/requests/{rid}/commitments",
                    headers=hs,
                    json={"lines": [{"item_code": ITEM, "quantity": 10}]},
                )
                r.raise_for_status()
                cid = r.json()["id"]

                def committed(rid: str = rid, cid: str = cid) -> bool:
                    got = http.get(f"{api_a}/requests/{rid}", headers=ha)
                    return got.status_code == 200 and any(
                        c["id"] == cid for c in got.json().get("commitments", [])
                    )

                commit_s = _poll("commitment on 合肥", committed)
                t2 = time.perf_counter()
                r = http.post(
                    f"{api_s}/commitments/{cid}/shipments",
                    headers=hs,
                    json={
                        "point_code": "310000-01",
                        "vehicle": f"沪A{i:05d}",
                        "lines": [{"item_code": ITEM, "quantity": 10, "per_box": 10}],
                    },
                )
                r.raise_for_status()
                sid = r.json()["id"]
                ship_s = _poll(
                    "shipment on 合肥",
                    lambda sid=sid: (
                        http.get(f"{api_a}/shipments/{sid}", headers=ha).status_code == 200
                    ),
                )
                t3 = time.perf_counter()
                if i == 0:
                    continue
                legs["request"].append((t1 - t0) * 1000 if seen >= 0 else 0)
                legs["commit"].append((t2 - t1) * 1000 if commit_s >= 0 else 0)
                legs["dispatch"].append((t3 - t2) * 1000 if ship_s >= 0 else 0)
                legs["total"].append((t3 - t0) * 1000)
    finally:
        for s in servers.values():
            s.stop()
    return {
        "rounds": rounds,
        **{
            f"{k}_ms": {"p50": pct(v, 0.5), "p95": pct(v, 0.95), "mean": statistics.fmean(v)}
            for k, v in legs.items()
        },
    }


# --- part 2: reserve queries -----------------------------------------------------------------------


@contextlib.contextmanager
def database(pg_url: str | None) -> Iterator[str]:
    if pg_url:
        from tongban.devserver import pg_database

        with pg_database(pg_url, "bench_emergency") as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{tmp}/bench.db"


def generate(session: Any, items: int, points_per_city: int) -> list[tuple[Any, ...]]:
    """Reserve points and one lot per point and item, row by row from Python (SQLite);
    the rows (city, item, quantity, expiry) for DuckDB."""
    from sqlalchemy import insert

    from tongban.emergency.models import ReservePoint, StockLot
    from tongban.regions import service as regions

    rng = random.Random(19)
    cities = regions.list_cities(session)
    today = date.today()
    codes = [f"BEN-{n:04d}" for n in range(items)]
    rows: list[tuple[Any, ...]] = []
    for city in cities:
        points = []
        for p in range(points_per_city):
            pid = uuid.uuid4()
            points.append(pid)
            session.execute(
                insert(ReservePoint).values(
                    id=pid,
                    code=f"{city.code}-B{p:03d}",
                    name=f"基准储备点{p}",
                    kind="government",
                    jurisdiction_code=city.jurisdiction_code,
                    city_code=city.code,
                    address="",
                    active=True,
                    created_at=datetime.now(UTC),
                )
            )
        batch: list[dict[str, Any]] = []
        for pid in points:
            for code in codes:
                q = rng.randint(0, 5000)
                expiry = today + timedelta(days=rng.randint(-30, 900))
                batch.append(
                    {
                        "id": uuid.uuid4(),
                        "point_id": pid,
                        "item_code": code,
                        "batch": "B1",
                        "expiry": expiry,
                        "quantity": q,
                        "state": "in_stock" if q else "empty",
                        "jurisdiction_code": city.jurisdiction_code,
                        "city_code": city.code,
                        "updated_at": datetime.now(UTC),
                        "event_seq": 0,
                        "version": 1,
                    }
                )
                rows.append((city.code, code, q, expiry))
            if len(batch) >= 20_000:
                session.execute(insert(StockLot), batch)
                batch = []
        if batch:
            session.execute(insert(StockLot), batch)
    return rows


def generate_pg(session: Any, items: int, points_per_city: int, csv_path: Path) -> int:
    """The same shape generated inside PostgreSQL (INSERT … SELECT over generate_series,
    seeded), with the lot table's indexes dropped during the load and rebuilt after;
    the rows (city, item, quantity, expiry) copied out to `csv_path` for DuckDB. How
    many lots."""
    from sqlalchemy import text

    session.execute(text("SELECT setseed(0.19)"))
    session.execute(
        text(
            "INSERT INTO emergency_point (id, code, name, kind, jurisdiction_code, city_code, "
            "address, active, created_at) "
            "SELECT gen_random_uuid(), c.code || '-B' || lpad(p::text, 3, '0'), "
            "'基准储备点' || p, 'government', c.jurisdiction_code, c.code, '', true, now() "
            "FROM city c CROSS JOIN generate_series(0, :points - 1) p"
        ),
        {"points": points_per_city},
    )
    with unindexed(session.execute, "emergency_lot"):
        session.execute(
            text(
                "INSERT INTO emergency_lot (id, point_id, item_code, batch, expiry, quantity, state, "
                "jurisdiction_code, city_code, updated_at, event_seq, version) "
                "SELECT gen_random_uuid(), p.id, 'BEN-' || lpad(i::text, 4, '0'), 'B1', "
                "current_date + (floor(random() * 931)::int - 30), q, "
                "CASE WHEN q > 0 THEN 'in_stock' ELSE 'empty' END, "
                "p.jurisdiction_code, p.city_code, now(), 0, 1 "
                "FROM emergency_point p CROSS JOIN generate_series(0, :items - 1) i "
                "CROSS JOIN LATERAL (SELECT floor(random() * 5001)::int + 0 * i AS q) r"
            ),
            {"items": items},
        )
    raw = session.connection().connection.driver_connection
    with (
        open(csv_path, "wb") as out,
        raw.cursor().copy(
            "COPY (SELECT city_code, item_code, quantity, expiry FROM emergency_lot) TO STDOUT "
            "(FORMAT csv)"
        ) as copy,
    ):
        for chunk in copy:
            out.write(chunk)
    return int(session.execute(text("SELECT count(*) FROM emergency_lot")).scalar_one())


def timed(fn: Callable[[], Any], repeat: int, warm: bool = True) -> tuple[float, float, Any]:
    """p50 and p95 (ms) of `repeat` runs (after one warm-up unless `warm` is False); the
    last result."""
    out = fn() if warm else None
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return pct(times, 0.5), pct(times, 0.95), out


NAMES = ("aggregate_all", "aggregate_city", "aggregate_item")


def queries(
    pg_url: str | None, items: int, points: int, repeat: int, lots_repeat: int
) -> dict[str, Any]:
    from sqlalchemy import func, select, text

    from tongban.catalog import service as catalog
    from tongban.config import Settings
    from tongban.contexts import build_node
    from tongban.db import make_engine, session_factory
    from tongban.emergency import stock, stock_sums
    from tongban.emergency.models import StockLot
    from tongban.migrate import upgrade
    from tongban.regions import service as regions

    with database(pg_url) as url, tempfile.TemporaryDirectory() as tmp:
        upgrade(url)
        engine = make_engine(url)
        settings = Settings(database_url=url, embedded_worker=False, secret_key="bench")
        node = build_node(settings, session_factory(engine))
        with node.transaction() as s:
            regions.load_reference_data(s)
            catalog.load_catalogue(s)
        pg = url.startswith("postgresql")
        csv_path = Path(tmp) / "lots.csv"
        t0 = time.perf_counter()
        with node.transaction() as s:
            if pg:
                n_lots = generate_pg(s, items, points, csv_path)
                rows: list[tuple[Any, ...]] = []
            else:
                rows = generate(s, items, points)
                n_lots = len(rows)
        gen_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with node.transaction() as s:  # the lots were written without movements
            if pg:  # the three GROUP BYs over the lots in memory, not spilled to disk
                s.execute(text("SET LOCAL work_mem = '256MB'"))
            stock_sums.rebuild(s)
        sums_s = time.perf_counter() - t0
        if pg:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("VACUUM ANALYZE emergency_lot"))
                for table in ("emergency_stock_total", "emergency_stock_expiry"):
                    c.execute(text(f"VACUUM ANALYZE {table}"))
        print(
            f"generated {n_lots:,} lots in {gen_s:.1f} s, their sums in {sums_s:.1f} s",
            file=sys.stderr,
        )
        city, item = "340100", "BEN-0007"
        results: dict[str, Any] = {
            "lots": n_lots,
            "generate_seconds": gen_s,
            "sums_rebuild_seconds": sums_s,
        }
        with node.session_factory() as s:
            results["sum_rows"] = {
                t: s.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("emergency_stock_total", "emergency_stock_expiry")
            }
            cases: dict[str, Callable[[], Any]] = {
                "aggregate_all": lambda: stock.aggregate(s),
                "aggregate_city": lambda: stock.aggregate(s, city_code=city),
                "aggregate_item": lambda: stock.aggregate(s, item_codes=[item]),
            }
            over_lots: dict[str, Callable[[], Any]] = {
                "aggregate_all": lambda: stock.aggregate_of_lots(s),
                "aggregate_city": lambda: stock.aggregate_of_lots(s, city_code=city),
                "aggregate_item": lambda: stock.aggregate_of_lots(s, item_codes=[item]),
            }
            plain = {
                "aggregate_all": lambda: s.execute(
                    select(StockLot.city_code, StockLot.item_code, func.sum(StockLot.quantity))
                    .where(StockLot.quantity > 0)
                    .group_by(StockLot.city_code, StockLot.item_code)
                ).all(),
                "aggregate_city": lambda: s.execute(
                    select(StockLot.item_code, func.sum(StockLot.quantity))
                    .where(StockLot.quantity > 0, StockLot.city_code == city)
                    .group_by(StockLot.item_code)
                ).all(),
                "aggregate_item": lambda: s.execute(
                    select(StockLot.city_code, func.sum(StockLot.quantity))
                    .where(StockLot.quantity > 0, StockLot.item_code == item)
                    .group_by(StockLot.city_code)
                ).all(),
            }
            con = duckdb.connect()
            t = time.perf_counter()
            if pg:
                con.execute(
                    "CREATE TABLE lot AS SELECT * FROM read_csv(?, header = false, columns = "
                    "{'city': 'VARCHAR', 'item': 'VARCHAR', 'quantity': 'INTEGER', "
                    "'expiry': 'DATE'})",
                    [str(csv_path)],
                )
            else:
                con.execute(
                    "CREATE TABLE lot(city VARCHAR, item VARCHAR, quantity INTEGER, expiry DATE)"
                )
                con.executemany("INSERT INTO lot VALUES (?, ?, ?, ?)", rows)
            duck_load = time.perf_counter() - t
            duck = {
                "aggregate_all": "SELECT city, item, sum(quantity), sum(CASE WHEN expiry >= "
                "current_date THEN quantity ELSE 0 END) FROM lot WHERE quantity > 0 "
                "GROUP BY city, item",
                "aggregate_city": f"SELECT item, sum(quantity) FROM lot WHERE quantity > 0 "
                f"AND city = '{city}' GROUP BY item",
                "aggregate_item": f"SELECT city, sum(quantity) FROM lot WHERE quantity > 0 "
                f"AND item = '{item}' GROUP BY city",
            }
            results["duckdb_load_seconds"] = duck_load
            for name in NAMES:
                p50, p95, out = timed(cases[name], repeat)
                lp50, lp95, before = timed(over_lots[name], lots_repeat, warm=False)
                if before != out:
                    raise AssertionError(f"{name}: the sums and the lots disagree")
                sp50, sp95, _ = timed(plain[name], repeat)
                query = duck[name]
                dp50, dp95, _ = timed(lambda q=query: con.execute(q).fetchall(), repeat)
                results[name] = {
                    "rows": len(out),
                    "service_ms": {"p50": p50, "p95": p95},
                    "service_over_lots_ms": {"p50": lp50, "p95": lp95, "runs": lots_repeat},
                    "plain_sql_ms": {"p50": sp50, "p95": sp95},
                    "duckdb_ms": {"p50": dp50, "p95": dp95},
                    "ratio_service_to_plain_sql": p50 / max(sp50, 1e-6),
                    "ratio_service_to_duckdb": p50 / max(dp50, 1e-6),
                }
                print(f"{name} done", file=sys.stderr)
        engine.dispose()
    results["database"] = "postgresql" if pg_url else "sqlite"
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and a tenth of the rows")
    parser.add_argument("--pg-url", default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--points", type=int, default=None, help="reserve points per city")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument(
        "--lots-repeat",
        type=int,
        default=None,
        help="runs of the former aggregate over the lots (slow at full size)",
    )
    parser.add_argument("--skip-nodes", action="store_true")
    parser.add_argument("--skip-queries", action="store_true")
    args = parser.parse_args()
    rounds = args.rounds or (5 if args.quick else 30)
    items = args.items or (100 if args.quick else 1000)
    points = args.points or (10 if args.quick else 100)
    repeat = args.repeat or (5 if args.quick else 5)
    lots_repeat = args.lots_repeat or (3 if args.quick else 1)
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "quick": args.quick,
    }
    if not args.skip_nodes:
        result["four_nodes"] = four_nodes(rounds)
    if not args.skip_queries:
        result["queries"] = q = queries(args.pg_url, items, points, repeat, lots_repeat)
        for name in NAMES:  # for the summary
            result[f"ratio_{name}_to_duckdb"] = q[name]["ratio_service_to_duckdb"]
            result[f"ratio_{name}_to_plain_sql"] = q[name]["ratio_service_to_plain_sql"]
    result["load_average"] = os.getloadavg()[0]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, ensure_ascii=False, indent=2), "utf-8")
    if "four_nodes" in result:
        n = result["four_nodes"]
        print(f"{'emergency: four nodes (SQLite, loopback)':44} {'p50 ms':>10} {'p95 ms':>10}")
        for leg, label in (
            ("request", "request → seen by the giver"),
            ("commit", "commitment → seen by the requester"),
            ("dispatch", "dispatch → shipment seen by the requester"),
            ("total", "request → commit → dispatch, end to end"),
        ):
            m = n[f"{leg}_ms"]
            print(f"{label:44} {m['p50']:>10.0f} {m['p95']:>10.0f}")
    if "queries" in result:
        q = result["queries"]
        title = f"stock queries ({q['database']}, {q['lots']:,} lots)"
        print(
            f"{title:40} {'service':>9} {'over lots':>10} {'plain SQL':>10} {'DuckDB':>9} "
            f"{'÷SQL':>7} {'÷Duck':>7}"
        )
        for name in NAMES:
            m = q[name]
            print(
                f"{name + ' p50 ms':40} {m['service_ms']['p50']:>9.1f} "
                f"{m['service_over_lots_ms']['p50']:>10.1f} "
                f"{m['plain_sql_ms']['p50']:>10.1f} {m['duckdb_ms']['p50']:>9.1f} "
                f"{m['ratio_service_to_plain_sql']:>7.2f} {m['ratio_service_to_duckdb']:>7.2f}"
            )
        print(f"load average (1 min) at the end: {result['load_average']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
