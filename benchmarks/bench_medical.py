"""Inter-regional clearing of N generated claims (10 million by default), beside a single
DuckDB GROUP BY over the same claims as the reference floor; then pre-settlement latency
(p50/p99) through the HTTP API at a fixed request rate.

Clearing: the claims are generated column-wise with polars (41 cities of the reference
data, random insured and treatment city, fund share, 0.5% reversals). The timed work is
the code path of `tongban medical clear` minus the database load: the per-batch
aggregation (`clearing.aggregate` over 200,000-row slices, as the command reads them),
`combine` and `finish` (matrices, net positions, statements). The reference is one
DuckDB `SELECT insured_j, treatment_j, SUM(fund) … GROUP BY` over the same claims,
loaded into a DuckDB table beforehand (via Parquet; not timed). Both results are
compared pair by pair.

Latency: `python -m tongban serve --no-worker` (uvicorn, one process) on 127.0.0.1
against a fresh database on the given PostgreSQL server (or SQLite with --sqlite);
POST /api/v1/medical/visits/{id}/presettle is sent open-loop at --rate requests per
second for --seconds seconds from a small thread pool; the run is bounded and stops by
itself. Writes var/bench/medical.json.

Usage (`make bench` starts a throwaway PostgreSQL server and runs this):
    python benchmarks/bench_medical.py --pg-url postgresql+psycopg://user@127.0.0.1:5432/postgres
    python benchmarks/bench_medical.py --claims 1000000 --sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tongban.devserver import free_port, pg_database
from tongban.devserver import running as server

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench" / "medical.json"
PASSWORD = "bench-password-123"
REQUEST_TIMEOUT = 10.0
WORKERS = 16
HUBS = {"310000", "320100", "320500", "330100", "330200", "340100"}


# --- clearing ------------------------------------------------------------------------


def generate(n: int, seed: int = 7) -> Any:
    """N claims as a polars frame of the clearing schema, generated column-wise: random
    insured city; a third treated in one of six big hospital cities, the rest anywhere;
    fund share 0–2999.99 yuan; 0.5% reversals (negative fund, sign −1)."""
    import polars as pl

    from tongban.medical.clearing import SCHEMA
    from tongban.regions.domain import read_cities

    cities = read_cities()
    nc = len(cities)
    city = pl.Series([int(c.code) for c in cities], dtype=pl.Int32)
    jur = pl.Series([int(c.jurisdiction_code) for c in cities], dtype=pl.Int32)
    hubs = [k for k, c in enumerate(cities) if c.code in HUBS]
    i = pl.col("i")
    idx = pl.select(i=pl.int_range(0, n, dtype=pl.UInt64)).select(
        ins=(i.hash(seed) % nc).cast(pl.UInt32),
        trt=pl.when(i.hash(seed + 1) % 3 == 0)
        .then(
            ((i.hash(seed + 1) // 3) % len(hubs)).replace_strict(
                list(range(len(hubs))), hubs, return_dtype=pl.UInt64
            )
        )
        .otherwise(i.hash(seed + 1) % nc)
        .cast(pl.UInt32),
        rev=i.hash(seed + 2) % 200 == 0,
        fund=(i.hash(seed + 3) % 300_000).cast(pl.Int64),
    )
    frame = pl.DataFrame(
        {
            "insured_j": jur.gather(idx["ins"]),
            "treatment_j": jur.gather(idx["trt"]),
            "insured_city": city.gather(idx["ins"]),
            "treatment_city": city.gather(idx["trt"]),
        }
    ).with_columns(
        fund=pl.when(idx["rev"]).then(-idx["fund"]).otherwise(idx["fund"]),
        sign=pl.when(idx["rev"]).then(-1).otherwise(1),
    )
    return frame.cast(SCHEMA)  # type: ignore[arg-type]


def clear_like_the_command(frame: Any) -> Any:
    from tongban.medical import clearing
    from tongban.medical.clearing_service import BATCH_ROWS

    partials = [clearing.aggregate(b) for b in frame.iter_slices(BATCH_ROWS)]
    return clearing.finish(clearing.combine(partials))


def best_of(repeat: int, fn: Any) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def bench_clearing(n: int, repeat: int) -> dict[str, Any]:
    import duckdb

    from tongban.medical import clearing

    t = time.perf_counter()
    frame = generate(n)
    gen_s = time.perf_counter() - t
    print(f"generated {n:,} claims in {gen_s:.1f} s ({frame.estimated_size('mb'):.0f} MB)")
    ours_s, result = best_of(repeat, lambda: clear_like_the_command(frame))
    single_s, single = best_of(repeat, lambda: clearing.compute(frame))
    assert single.digest == result.digest
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "claims.parquet"
        frame.write_parquet(path)
        con = duckdb.connect()
        con.execute(f"CREATE TABLE claims AS SELECT * FROM read_parquet('{path}')")
    ref_s, ref = best_of(
        repeat,
        lambda: con.execute(
            "SELECT insured_j, treatment_j, SUM(fund) FROM claims GROUP BY insured_j, treatment_j"
        ).fetchall(),
    )
    con.close()
    expected = {(f"{d:06d}", f"{c:06d}"): int(s) for d, c, s in ref if d != c}
    got = {(g.debtor, g.creditor): g.amount for g in result.jurisdictions}
    assert got == expected, "clearing and the DuckDB reference disagree"
    assert sum(x.net for x in result.nets) == 0
    return {
        "claims": n,
        "clearing_seconds": round(ours_s, 4),
        "clearing_single_frame_seconds": round(single_s, 4),
        "duckdb_group_by_seconds": round(ref_s, 4),
        "ratio": round(ours_s / ref_s, 2),
        "claims_per_second": round(n / ours_s),
        "jurisdiction_pairs": len(result.jurisdictions),
        "city_pairs": len(result.cities),
        "statements": len(result.pairs),
        "reversals": result.reversal_count,
        "digest": result.digest,
        "repeat": repeat,
    }


# --- pre-settlement latency -----------------------------------------------------------


def prepare(database_url: str) -> str:
    """Migrate and seed a minimal federation: one 上海 hospital, its counter account, an
    insured person of 合肥 with a filing, and one registered visit with three items."""
    from datetime import date

    from tongban.config import Settings
    from tongban.contexts import build_node
    from tongban.db import make_engine, session_factory
    from tongban.identity import service as identity
    from tongban.medical import service
    from tongban.migrate import upgrade
    from tongban.regions import service as regions

    upgrade(database_url)
    engine = make_engine(database_url)
    # Loaded as the node the server runs as (its sessions carry its settings).
    node = build_node(Settings(database_url=database_url), session_factory(engine))
    with node.transaction() as s:
        regions.load_reference_data(s)
        service.load_reference(s)
        inst = service.create_institution(
            s, code="HBENCH", name="压测医院", city_code="310000", level=3
        )
        staff = identity.create_account(
            s,
            username="bench-hospital",
            password=PASSWORD,
            role="hospital",
            display_name="压测收费员",
            jurisdiction_code="310000",
            city_code="310000",
        )
        service.assign_staff(s, staff, inst)
        person = service.create_insured(
            s,
            id_number="340102199003071283",
            name="压测参保人",
            city_code="340100",
            scheme="employee",
            account_balance=100_000,
        )
        service.create_filing(
            s, person, type="temporary", valid_from=date(2000, 1, 1), target_city="310000"
        )
        v = service.register_visit(s, staff, id_number=person.id_number, visit_no="BENCH-1")
        service.upload_items(
            s,
            staff,
            v.id,
            [
                service.ItemInput("T0006", 1, 250_000),
                service.ItemInput("D0005", 3, 4_210),
                service.ItemInput("D0011", 1, 3_000),
            ],
        )
        visit_id = str(v.id)
    engine.dispose()
    return visit_id


def percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def drive(base: str, visit_id: str, rate: float, seconds: float) -> dict[str, Any]:
    """Open loop: request k is sent at start + k / rate, whatever the earlier ones did."""
    with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT) as c:
        r = c.post("/api/v1/auth/token", data={"username": "bench-hospital", "password": PASSWORD})
        r.raise_for_status()
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        for _ in range(20):  # warm-up
            c.post(
                f"/api/v1/medical/visits/{visit_id}/presettle", headers=headers
            ).raise_for_status()
    total = int(rate * seconds)
    # One client, created and warmed before the clock starts (creating clients inside the
    # timed loop costs an SSL context each); httpx.Client is safe to share between threads.
    shared = httpx.Client(
        base_url=base,
        timeout=REQUEST_TIMEOUT,
        headers=headers,
        limits=httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS),
    )
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(
            pool.map(
                lambda _: shared.post(f"/api/v1/medical/visits/{visit_id}/presettle"),
                range(WORKERS * 2),
            )
        )
    start = time.perf_counter() + 0.2

    def one(k: int) -> tuple[float, float, bool]:
        due = start + k / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        t = time.perf_counter()
        try:
            ok = shared.post(f"/api/v1/medical/visits/{visit_id}/presettle").status_code == 200
        except httpx.HTTPError:
            ok = False
        end = time.perf_counter()
        return end - t, t - due, ok

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(one, range(total)))
    shared.close()
    lat = [r[0] * 1000 for r in results if r[2]]
    lag = [r[1] * 1000 for r in results]
    return {
        "rate_per_second": rate,
        "seconds": seconds,
        "requests": total,
        "errors": sum(1 for r in results if not r[2]),
        "p50_ms": round(percentile(lat, 50), 2) if lat else None,
        "p99_ms": round(percentile(lat, 99), 2) if lat else None,
        "max_ms": round(max(lat), 2) if lat else None,
        "max_send_lag_ms": round(max(lag), 2),
    }


@contextmanager
def sqlite_database() -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}"


def bench_latency(args: argparse.Namespace) -> dict[str, Any]:
    db_ctx = (
        sqlite_database()
        if args.sqlite or not args.pg_url
        else pg_database(args.pg_url, "bench_med")
    )
    with db_ctx as url, tempfile.TemporaryDirectory() as logdir:
        visit_id = prepare(url)
        port = free_port()
        env = {
            **os.environ,
            "TONGBAN_DATABASE_URL": url,
            "TONGBAN_SECRET_KEY": "bench-secret",
            "TONGBAN_EMBEDDED_WORKER": "false",
        }
        argv = [sys.executable, "-m", "tongban", "serve", "--no-worker", "--port", str(port)]
        with server("tongban", argv, env, port, Path(logdir)) as base:
            out = drive(base, visit_id, args.rate, args.seconds)
        out["database"] = "sqlite" if url.startswith("sqlite") else "postgresql"
        return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pg-url", help="PostgreSQL server URL (a fresh database is created)")
    p.add_argument("--sqlite", action="store_true", help="latency against SQLite instead")
    p.add_argument("--claims", type=int, default=10_000_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--rate", type=float, default=50.0, help="pre-settlements per second")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--skip-latency", action="store_true")
    args = p.parse_args()
    out: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    c = bench_clearing(args.claims, args.repeat)
    out["clearing"] = c
    print()
    print(f"clearing of {c['claims']:,} claims (best of {c['repeat']})")
    print(f"  {'tongban clearing (batched, as the command)':44} {c['clearing_seconds']:8.3f} s")
    print(f"  {'tongban clearing (one frame)':44} {c['clearing_single_frame_seconds']:8.3f} s")
    print(f"  {'DuckDB GROUP BY (reference floor)':44} {c['duckdb_group_by_seconds']:8.3f} s")
    print(f"  {'ratio (clearing / reference)':44} {c['ratio']:8.2f}")
    print(
        f"  {c['jurisdiction_pairs']} jurisdiction pairs, {c['city_pairs']} city pairs, "
        f"{c['statements']} statements, {c['reversals']:,} reversals; results equal"
    )
    if not args.skip_latency:
        lt = bench_latency(args)
        out["presettle"] = lt
        print()
        print(
            f"pre-settlement over HTTP ({lt['database']}), {lt['rate_per_second']:.0f} req/s "
            f"for {lt['seconds']:.0f} s: {lt['requests']} requests, {lt['errors']} errors"
        )
        print(f"  p50 {lt['p50_ms']} ms   p99 {lt['p99_ms']} ms   max {lt['max_ms']} ms")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, ensure_ascii=False, indent=2))
    print(f"\nwrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
