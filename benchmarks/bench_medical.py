"""Inter-regional clearing of N generated claims (10 million by default), beside a single
DuckDB GROUP BY over the same claims as the reference floor; then pre-settlement and
settlement latency (p50/p99) through the HTTP API at a fixed request rate, on one node
and across two nodes on loopback, in one run.

Clearing: the claims are generated column-wise with polars (41 cities of the reference
data, random insured and treatment city, fund share, 0.5% reversals). The timed work in
memory is the columnar clearing: the per-slice aggregation (`clearing.aggregate` over
200,000-row slices), `combine` and `finish` (matrices, net positions, statements). The
reference is one DuckDB `SELECT insured_j, treatment_j, SUM(fund) … GROUP BY` over the
same claims, loaded into a DuckDB table beforehand (via Parquet; not timed). Both results
are compared pair by pair.

With --pg-url, the same number of settlements (--db-claims) is generated inside a fresh
PostgreSQL database with the audit chain entries they would have made, and the clearing
tally is folded from them (timed: (b), the cost of keeping it, total and per claim,
with a rebuild from the rows beside it). Then 0.1 % more settlements arrive (the tail
since the last fold) and the period is cleared --repeat times in child processes
exactly as `tongban medical clear` does, alternating: (a) with the tally
(`clearing_service.load_aggregate`: fold the tail, read ≤ cities² rows, then `finish`)
and (c) with --rescan (one GROUP BY per city pair in the database), medians, with the
children's peak RSS (VmHWM) — the command's memory. The reference (the issue's 2× aim):
one DuckDB GROUP BY over the same claim lines, loaded from PostgreSQL into DuckDB
(COPY … TO STDOUT as CSV, DuckDB's reader; the load timed apart), the median of
--repeat; the ratios and "met / not met" are printed. One plain GROUP BY in PostgreSQL
is printed beside them. The in-memory timings are medians of --repeat too. --keep-db NAME
seeds that database once and reuses it in later runs (seeding 10 M settlements takes ~10
minutes; the children never commit, so the tail stays unfolded); --before-src DIR clears
with another tree's code (its src, e.g. `git archive <commit> src`) in turn with the
working tree's, both ratios printed in one run. Each child also reports its process CPU
and its PostgreSQL backend's (from /proc, when the server is on this machine).

Latency, the same calls at the same rate in two set-ups, one after the other:

- one node: `python -m tongban serve --no-worker` serving every jurisdiction (the
  insured node's queries answered in-process, in the hospital's transaction);
- two nodes: `exchange init-local --nodes 2` on 127.0.0.1, each `tongban serve --node …
  --no-worker`: node-310000 holds a 上海 三级 hospital, node-320000 the 40 insured
  persons of 合肥 (each with a filing for 上海); every pre-settlement asks the insured
  node for eligibility, every settlement reserves there and — once the hospital has
  committed and answered the counter — confirms, over RFC 9421-signed HTTP queries.

In each, visits with three items are registered beforehand (not timed) round the 40
persons; then POST /api/v1/medical/visits/{id}/presettle (one visit, again and again: it
moves nothing) and POST /api/v1/medical/settlements (a fresh visit and transaction id
each) are sent open-loop at --rate requests per second for --seconds seconds each, from
a pool of 16 threads sharing one warmed client. Afterwards (once the hospital's node
owes no confirmation) the insured node must hold exactly one confirmed reservation per
settlement the hospital's node holds, and the hospital's node none. Fresh
databases on the given PostgreSQL server (dropped at the end), or SQLite files with
--sqlite. The run is bounded and stops by itself. Writes var/bench/medical.json.

Usage (`make bench` starts a throwaway PostgreSQL server and runs this):
    python benchmarks/bench_medical.py --pg-url postgresql+psycopg://user@127.0.0.1:5432/postgres
    python benchmarks/bench_medical.py --claims 1000000 --sqlite
    python benchmarks/bench_medical.py --skip-clearing --rate 20 --seconds 15 --pg-url …
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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tongban.devserver import free_port, free_port_block, pg_database
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


#: The slices the in-memory clearing aggregates one at a time (as the command read the
#: claims before it grouped them in the database).
SLICE_ROWS = 200_000


def clear_like_the_command(frame: Any) -> Any:
    from tongban.medical import clearing

    partials = [clearing.aggregate(b) for b in frame.iter_slices(SLICE_ROWS)]
    return clearing.finish(clearing.combine(partials))


def median_of(repeat: int, fn: Any) -> tuple[float, Any]:
    """The median time of `repeat` calls of `fn`, and its last result."""
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def bench_clearing(n: int, repeat: int) -> dict[str, Any]:
    import duckdb

    from tongban.medical import clearing

    t = time.perf_counter()
    frame = generate(n)
    gen_s = time.perf_counter() - t
    print(f"generated {n:,} claims in {gen_s:.1f} s ({frame.estimated_size('mb'):.0f} MB)")
    ours_s, result = median_of(repeat, lambda: clear_like_the_command(frame))
    single_s, single = median_of(repeat, lambda: clearing.compute(frame))
    assert single.digest == result.digest
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "claims.parquet"
        frame.write_parquet(path)
        con = duckdb.connect()
        con.execute(f"CREATE TABLE claims AS SELECT * FROM read_parquet('{path}')")
    ref_s, ref = median_of(
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
        "ratio_single_frame": round(single_s / ref_s, 2),
        "claims_per_second": round(n / ours_s),
        "jurisdiction_pairs": len(result.jurisdictions),
        "city_pairs": len(result.cities),
        "statements": len(result.pairs),
        "reversals": result.reversal_count,
        "digest": result.digest,
        "repeat": repeat,
    }


# --- pre-settlement and settlement latency: one node, and two nodes on loopback ----------

HOSPITAL_USER = "bench-hospital"
#: Insured persons the settlements go round (each settlement locks its person's row).
PEOPLE = 40
#: Settlements sent before the clock starts (each consumes a visit).
WARM_SETTLEMENTS = 10


def _id_number(n: int) -> str:
    from stdnum.cn import ric

    body = f"340102{19900101 + n % 28:08d}{n % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def _as_node(url: str, node_id: str, served: str) -> Any:
    """Sessions of the node `node_id` on `url` (they carry its settings)."""
    from tongban.config import Settings
    from tongban.contexts import build_node
    from tongban.db import make_engine, session_factory

    engine = make_engine(url)
    settings = Settings(database_url=url, node_id=node_id, served_jurisdictions=served)
    return engine, build_node(settings, session_factory(engine))


def seed(url: str, node_id: str, served: str, *, hospital: bool, insured: bool) -> list[str]:
    """The policies and catalogues, and — where this node holds them — a 上海 三级
    hospital with its counter account, and PEOPLE insured persons of 合肥 (employee
    scheme) each with a filing for 上海; returns their ID numbers."""
    from datetime import date

    from tongban.identity import service as identity
    from tongban.medical import service

    engine, node = _as_node(url, node_id, served)
    ids: list[str] = []
    try:
        with node.transaction() as s:
            service.load_reference(s)
            if hospital:
                inst = service.create_institution(
                    s, code="HBENCH", name="压测医院", city_code="310000", level=3
                )
                staff = identity.create_account(
                    s,
                    username=HOSPITAL_USER,
                    password=PASSWORD,
                    role="hospital",
                    display_name="压测收费员",
                    jurisdiction_code="310000",
                    city_code="310000",
                )
                service.assign_staff(s, staff, inst)
            if insured:
                for n in range(PEOPLE):
                    person = service.create_insured(
                        s,
                        id_number=_id_number(n),
                        name=f"压测参保人{n}",
                        city_code="340100",
                        scheme="employee",
                        account_balance=10_000_000,
                    )
                    service.create_filing(
                        s,
                        person,
                        type="temporary",
                        valid_from=date(2000, 1, 1),
                        target_city="310000",
                    )
                    ids.append(person.id_number)
    finally:
        engine.dispose()
    return ids


def percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def open_loop(
    client: httpx.Client, rate: float, total: int, call: Callable[[int], httpx.Response], ok: int
) -> dict[str, Any]:
    """Request k is sent at start + k / rate, whatever the earlier ones did (open loop,
    from a pool of WORKERS threads sharing one warmed client)."""
    start = time.perf_counter() + 0.2

    def one(k: int) -> tuple[float, float, bool]:
        due = start + k / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        t = time.perf_counter()
        try:
            good = call(k).status_code == ok
        except httpx.HTTPError:
            good = False
        end = time.perf_counter()
        return end - t, t - due, good

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(one, range(total)))
    lat = [r[0] * 1000 for r in results if r[2]]
    lag = [r[1] * 1000 for r in results]
    return {
        "rate_per_second": rate,
        "requests": total,
        "errors": sum(1 for r in results if not r[2]),
        "p50_ms": round(percentile(lat, 50), 2) if lat else None,
        "p99_ms": round(percentile(lat, 99), 2) if lat else None,
        "max_ms": round(max(lat), 2) if lat else None,
        "max_send_lag_ms": round(max(lag), 2),
    }


def _visits(client: httpx.Client, ids: list[str], count: int, tag: str) -> list[str]:
    """`count` registered visits with three items each, round the insured persons (not
    timed: on two nodes each registration asks the insured node)."""

    def one(k: int) -> str:
        r = client.post(
            "/api/v1/medical/visits",
            json={"id_number": ids[k % len(ids)], "visit_no": f"{tag}-{k}"},
        )
        r.raise_for_status()
        vid = str(r.json()["id"])
        items = {
            "items": [
                {"code": "T0006", "quantity": 1, "unit_price": 25_000 + k},
                {"code": "D0005", "quantity": 3, "unit_price": 4_210},
                {"code": "D0011", "quantity": 1, "unit_price": 3_000},
            ]
        }
        client.put(f"/api/v1/medical/visits/{vid}/items", json=items).raise_for_status()
        return vid

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, range(count)))


def measure(base: str, ids: list[str], rate: float, seconds: float, tag: str) -> dict[str, Any]:
    """Pre-settlement (of one visit, again and again: it moves nothing) and settlement (of
    a fresh visit each, under a fresh transaction id) at `rate` per second, open loop,
    through the hospital node's HTTP API."""
    total = int(rate * seconds)
    with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT) as c:
        r = c.post("/api/v1/auth/token", data={"username": HOSPITAL_USER, "password": PASSWORD})
        r.raise_for_status()
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    client = httpx.Client(
        base_url=base,
        timeout=REQUEST_TIMEOUT,
        headers=headers,
        limits=httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS),
    )
    try:
        t = time.perf_counter()
        visits = _visits(client, ids, total + WARM_SETTLEMENTS + 1, tag)
        print(f"  {tag}: {len(visits)} visits registered in {time.perf_counter() - t:.1f} s")
        pre_visit, warm, timed = (
            visits[0],
            visits[1 : 1 + WARM_SETTLEMENTS],
            visits[1 + WARM_SETTLEMENTS :],
        )
        presettle = f"/api/v1/medical/visits/{pre_visit}/presettle"
        for _ in range(WORKERS * 2):  # warm-up: connections, the peer's too
            client.post(presettle).raise_for_status()
        for k, vid in enumerate(warm):
            r = client.post(
                "/api/v1/medical/settlements", json={"visit_id": vid, "txn_id": f"{tag}-W{k}"}
            )
            assert r.status_code == 201, r.text
        pre = open_loop(client, rate, total, lambda k: client.post(presettle), 200)
        settle = open_loop(
            client,
            rate,
            total,
            lambda k: client.post(
                "/api/v1/medical/settlements",
                json={"visit_id": timed[k], "txn_id": f"{tag}-T{k}"},
            ),
            201,
        )
    finally:
        client.close()
    return {"presettle": {**pre, "seconds": seconds}, "settle": {**settle, "seconds": seconds}}


@contextmanager
def databases(args: argparse.Namespace, count: int) -> Iterator[list[str]]:
    """`count` fresh databases: PostgreSQL ones on --pg-url, else SQLite files."""
    with ExitStack() as stack:
        if args.pg_url and not args.sqlite:
            yield [
                stack.enter_context(pg_database(args.pg_url, f"bench_med{i}")) for i in range(count)
            ]
        else:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            yield [f"sqlite:///{tmp / f'bench{i}.db'}" for i in range(count)]


def one_node(args: argparse.Namespace, url: str, logdir: Path) -> dict[str, Any]:
    """The embedded default: one node serving every jurisdiction; the insured node's
    queries are answered in-process, in the hospital's transaction."""
    from tongban.catalog import service as catalog
    from tongban.migrate import upgrade
    from tongban.regions import service as regions

    upgrade(url)
    engine, node = _as_node(url, "local", "*")
    with node.transaction() as s:
        regions.load_reference_data(s)
        catalog.load_catalogue(s)
    engine.dispose()
    ids = seed(url, "local", "*", hospital=True, insured=True)
    port = free_port()
    env = {
        **os.environ,
        "TONGBAN_DATABASE_URL": url,
        "TONGBAN_SECRET_KEY": "bench-secret",
        "TONGBAN_EMBEDDED_WORKER": "false",
    }
    argv = [sys.executable, "-m", "tongban", "serve", "--no-worker", "--port", str(port)]
    with server("one-node", argv, env, port, logdir) as base:
        measured = measure(base, ids, args.rate, args.seconds, "ONE")
        measured["settled"] = _in_step(url)
        return measured


def two_nodes(args: argparse.Namespace, urls: list[str], logdir: Path) -> dict[str, Any]:
    """`exchange init-local --nodes 2` on 127.0.0.1: node-310000 (上海, 浙江) holds the
    hospital, node-320000 (江苏, 安徽) the 合肥 insured; every pre-settlement asks the
    insured node for eligibility, every settlement reserves there and confirms after the
    hospital's commit, over signed HTTP queries."""
    from tongban.exchange.local import init_local

    base_port = free_port_block(2, start=24100, step=41)
    _, (hosp, ins) = init_local(logdir / "fed", 2, base_port, database_urls=urls, demo=False)
    seed(hosp.database_url, hosp.id, ",".join(hosp.jurisdictions), hospital=True, insured=False)
    ids = seed(ins.database_url, ins.id, ",".join(ins.jurisdictions), hospital=False, insured=True)
    with ExitStack() as stack:
        bases = []
        for n in (ins, hosp):
            env = {**os.environ, "PYTHONUNBUFFERED": "1", "TONGBAN_EMBEDDED_WORKER": "false"}
            for line in (n.directory / ".env").read_text().splitlines():
                k, _, v = line.partition("=")
                env[k] = v
            port = int(n.base_url.rsplit(":", 1)[1])
            argv = [sys.executable, "-m", "tongban", "serve", "--node", n.id, "--no-worker"]
            bases.append(stack.enter_context(server(n.id, argv, env, port, logdir)))
        measured = measure(bases[1], ids, args.rate, args.seconds, "TWO")
        measured["settled"] = _in_step(hosp.database_url)
        return measured


def _in_step(url: str, timeout: float = 60.0) -> int:
    """Wait (servers still running) until the hospital's node owes the insured node no
    confirmation — they are sent after each answer — and return how many settlements
    it holds."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    owed = (
        "SELECT count(*) FROM med_settlement WHERE status = 'settled' AND insured_ack = 'reserved'"
    )
    try:
        deadline = time.monotonic() + timeout
        with engine.connect() as c:
            while int(c.execute(text(owed)).scalar_one()) and time.monotonic() < deadline:
                c.rollback()
                time.sleep(0.2)
            return int(c.execute(text("SELECT count(*) FROM med_settlement")).scalar_one())
    finally:
        engine.dispose()


def _confirmed(url: str) -> int:
    """Reservations confirmed in a node's database (its insured's accumulators moved)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as c:
            q = "SELECT count(*) FROM med_reservation WHERE state = 'confirmed'"
            return int(c.execute(text(q)).scalar_one())
    finally:
        engine.dispose()


def _check(measured: dict[str, Any], insured_url: str, others: list[str]) -> None:
    """Every settlement reserved and confirmed on the insured node, and only there (the
    hospital's settlements are counted in its database: a request the client gave up
    on may still have settled)."""
    s = measured["settle"]
    expected = measured["settled"]
    assert expected >= WARM_SETTLEMENTS + s["requests"] - s["errors"]
    got = _confirmed(insured_url)
    assert got == expected, f"{got} confirmed reservations, {expected} settlements"
    assert all(_confirmed(u) == 0 for u in others), "reservations on the hospital's node"


def bench_latency(args: argparse.Namespace) -> dict[str, Any]:
    """The same calls, at the same rate, on one node and across two, in one run."""
    with databases(args, 3) as urls, tempfile.TemporaryDirectory() as tmp:
        logdir = Path(tmp)
        database = "sqlite" if urls[0].startswith("sqlite") else "postgresql"
        print(f"\nlatency over HTTP ({database}), {args.rate:.0f} req/s for {args.seconds:.0f} s")
        one = one_node(args, urls[0], logdir)
        _check(one, urls[0], [])
        two = two_nodes(args, urls[1:], logdir)
        _check(two, urls[2], [urls[1]])
    return {"database": database, "one_node": one, "two_nodes": two}


def _print_latency(lt: dict[str, Any]) -> None:
    print()
    print(
        f"latency ({lt['database']}, open loop)           one node              two nodes (loopback)"
    )
    for call, label in (("presettle", "pre-settlement (2206)"), ("settle", "settlement (2207)")):
        a, b = lt["one_node"][call], lt["two_nodes"][call]
        print(
            f"  {label:28} p50 {a['p50_ms']:>7} ms p99 {a['p99_ms']:>7} ms   "
            f"p50 {b['p50_ms']:>7} ms p99 {b['p99_ms']:>7} ms"
        )
        print(
            f"  {'':28} {a['requests']} requests, {a['errors']} errors"
            f"{'':10}{b['requests']} requests, {b['errors']} errors"
        )


# --- clearing from the database (the command's load, timed apart; peak memory) ------------

PERIOD = "2026-10"


def seed_settlements(
    url: str, n: int, prefix: str = "T", *, bulk: bool = True
) -> tuple[float, Any]:
    """N settlements of PERIOD generated inside PostgreSQL (INSERT … SELECT, seeded): random
    insured and treatment city of the reference data, fund share 0–2999.99 yuan, 0.5%
    claims of the month before reversed in PERIOD (counted with sign −1). The table's
    foreign keys are dropped for the load (one institution and visit id stand for all)
    and its indexes rebuilt after. Seconds taken."""
    import uuid

    from _bulk import unindexed
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    inst = uuid.uuid4()
    t = time.perf_counter()
    with engine.begin() as c, ExitStack() as stack:
        if bulk:  # (a small tail goes into the indexed table)
            stack.enter_context(unindexed(c.execute, "med_settlement", foreign_keys=False))
        c.execute(text("SELECT setseed(0.14)"))
        c.execute(
            text(
                "WITH c AS (SELECT array_agg(code ORDER BY code) AS codes, "
                "array_agg(jurisdiction_code ORDER BY code) AS js, count(*)::int AS n FROM city) "
                "INSERT INTO med_settlement (id, institution_id, txn_id, request_hash, visit_id, "
                "id_number, insured_name, scheme, level, insured_jurisdiction, insured_city, "
                "treatment_jurisdiction, treatment_city, insured_ack, year, settled_day, period, "
                "total, class_a, class_b, class_c, eligible, deductible_part, fund, account, "
                "cash, status, settled_at, reversal_period, version, event_seq) "
                "SELECT gen_random_uuid(), :inst, :prefix || g, '', :visit, '', '', 'employee', 3, "
                "c.js[r.a], c.codes[r.a], c.js[r.b], c.codes[r.b], 'confirmed', 2026, "
                "date '2026-10-15', CASE WHEN r.rev THEN '2026-09' ELSE :period END, r.f, "
                "0, 0, 0, 0, 0, r.f, 0, 0, CASE WHEN r.rev THEN 'reversed' ELSE 'settled' END, "
                "now(), CASE WHEN r.rev THEN :period END, 1, 0 "
                "FROM c, generate_series(1, :n) g, LATERAL (SELECT "
                "1 + floor(random() * c.n)::int + 0 * g AS a, 1 + floor(random() * c.n)::int AS b, "
                "random() < 0.005 AS rev, floor(random() * 300000)::bigint AS f) r"
            ),
            {"inst": inst, "visit": uuid.uuid4(), "n": n, "period": PERIOD, "prefix": prefix},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE med_settlement"))
    engine.dispose()
    return time.perf_counter() - t, inst


def _settlement_body() -> str:
    """The arguments of json_build_object that make a settlement's chain entry body as
    its mapper writes it (the fields `Settlement.__audit_fields__` names; the clearing
    tally's fold reads the period, jurisdictions, cities and fund from it)."""
    from tongban.medical.models import Settlement

    return ", ".join(f"'{f}', {f}" for f in Settlement.__audit_fields__)


def seed_entries(url: str, inst: Any) -> float:
    """The audit chain entries the settlements of `inst` would have made (what the
    clearing tally folds): one `medical.settlement` per settlement (its body the fields
    its mapper writes: the period, both sides' jurisdictions and cities, the amounts), and for each reversed one its reversal event (the payload
    the claim's and the reversal's periods) with its `medical.settlement.event` entry,
    appended after the head. The hashes are placeholders: nothing here verifies the
    chain. Seconds taken."""
    from _bulk import unindexed
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    t = time.perf_counter()
    zeros = "repeat('0', 64)"
    with engine.begin() as c:
        base = int(c.execute(text("SELECT coalesce(max(seq), 0) FROM audit_entry")).scalar_one())
        with unindexed(c.execute, "audit_entry"):
            c.execute(
                text(
                    "INSERT INTO audit_entry (seq, at, kind, subject, actor, body, alg, "
                    f"prev_hash, hash) SELECT :base + row_number() OVER (ORDER BY txn_id), now(), "
                    "'medical.settlement', 'settlement:' || id, 'system', "
                    f"json_build_object({_settlement_body()})::text, 'sha-256', "
                    f"{zeros}, {zeros} FROM med_settlement WHERE institution_id = :inst"
                ),
                {"base": base, "inst": inst},
            )
            c.execute(
                text(
                    "INSERT INTO med_settlement_event (id, settlement_id, seq, action, "
                    "from_state, to_state, actor_name, actor_role, comment, payload, at) "
                    "SELECT gen_random_uuid(), id, 1, 'reverse', 'settled', 'reversed', "
                    "'bench', 'system', '', json_build_object('period', period, "
                    "'reversal_period', reversal_period), now() FROM med_settlement "
                    "WHERE institution_id = :inst AND status = 'reversed'"
                ),
                {"inst": inst},
            )
            top = int(c.execute(text("SELECT max(seq) FROM audit_entry")).scalar_one())
            c.execute(
                text(
                    "INSERT INTO audit_entry (seq, at, kind, subject, actor, body, alg, "
                    f"prev_hash, hash) SELECT :top + row_number() OVER (ORDER BY txn_id), now(), "
                    "'medical.settlement.event', 'settlement:' || id, 'system', "
                    "'{\"to_state\":\"reversed\"}', 'sha-256', "
                    f"{zeros}, {zeros} FROM med_settlement "
                    "WHERE institution_id = :inst AND status = 'reversed'"
                ),
                {"top": top, "inst": inst},
            )
        c.execute(
            text(
                "INSERT INTO audit_head (id, seq, hash) SELECT 1, max(seq), repeat('0', 64) "
                "FROM audit_entry ON CONFLICT (id) DO UPDATE SET seq = excluded.seq"
            )
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE audit_entry"))
        c.execute(text("VACUUM ANALYZE med_settlement_event"))
    engine.dispose()
    return time.perf_counter() - t


def fold_all(url: str) -> dict[str, Any]:
    """The clearing tally from nothing: marked built at position 0 (no entry folded),
    then folded as the job does, every settlement and reversal of the chain (timed); and
    the rebuild from the rows for comparison (timed), both committed."""
    from sqlalchemy import text

    from tongban.config import Settings
    from tongban.contexts import build_node
    from tongban.db import make_engine, session_factory
    from tongban.medical import clearing_service as cs

    engine = make_engine(url)
    node = build_node(
        Settings(database_url=url, embedded_worker=False, secret_key="bench"),
        session_factory(engine),
    )
    with node.transaction() as s:
        s.execute(text("DELETE FROM med_clearing_tally"))
        s.execute(text("DELETE FROM med_clearing_tally_mark"))
        s.execute(text("INSERT INTO med_clearing_tally_mark (id, position) VALUES (1, 0)"))
    with node.transaction() as s:
        t = time.perf_counter()
        folded = cs.fold_tally(s)
        fold_s = time.perf_counter() - t
    with node.transaction() as s:
        t = time.perf_counter()
        cs.rebuild_tally(s)
        rebuild_s = time.perf_counter() - t
    engine.dispose()
    return {"entries": folded.entries, "fold_seconds": fold_s, "rebuild_seconds": rebuild_s}


def clear_from_database_child(url: str, rescan: bool) -> None:
    """In a process of its own (its peak RSS is the command's): clear PERIOD as `tongban
    medical clear` does (`clearing_service.load_aggregate`: the tally's tail folded, then
    its ≤ cities² rows read; or with `rescan` the claims grouped in the database; then
    `finish`), not committed (each child folds the same tail); print JSON."""
    from tongban.config import Settings
    from tongban.contexts import build_node
    from tongban.db import make_engine, session_factory
    from tongban.medical import clearing
    from tongban.medical import clearing_service as cs

    engine = make_engine(url)
    node = build_node(
        Settings(database_url=url, embedded_worker=False, secret_key="bench"),
        session_factory(engine),
    )
    import gc

    from sqlalchemy.orm import configure_mappers

    # The start-up work of any command, kept out of the timed part (both modes): the
    # ORM's one-time set-up, and a full garbage collection of the start-up heap (else
    # one lands, ~1 s under load, inside whichever statement allocates when it is due).
    configure_mappers()
    gc.collect()
    gc.freeze()
    rss_before = _status_kb("VmRSS")
    with node.session_factory() as s:
        folded: list[Any] = []
        cpu = time.process_time()
        t = time.perf_counter()
        agg = cs.load_aggregate(s, PERIOD, rescan=rescan, folded=folded)
        load_s = time.perf_counter() - t
        tail = sum(f.entries for f in folded)
        fold_s = sum(f.seconds for f in folded)
        s.rollback()
        t = time.perf_counter()
        res = clearing.finish(agg)
        finish_s = time.perf_counter() - t
        cpu = time.process_time() - cpu
        backend = _backend_cpu(s)
    engine.dispose()
    print(
        json.dumps(
            {
                "load_seconds": load_s,
                "fold_tail_seconds": fold_s,
                "tail_entries": tail,
                "finish_seconds": finish_s,
                "process_cpu_seconds": cpu,
                "backend_cpu_seconds": backend,
                "claims": res.claim_count,
                "reversals": res.reversal_count,
                "gross": [[g.debtor, g.creditor, g.amount] for g in res.jurisdictions],
                "rss_before_kb": rss_before,
                "vmhwm_kb": _status_kb("VmHWM"),
            }
        )
    )


def _backend_cpu(session: Any) -> float | None:
    """CPU time of the session's PostgreSQL backend so far (from /proc: the server on
    this machine), or None when it is elsewhere."""
    from sqlalchemy import text

    pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    session.rollback()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _met(ratio: float, aim: float = 2.0) -> str:
    return "met" if ratio <= aim else "not met"


def _claim_lines_sql(url: str) -> str:
    """The SQL of the claim lines the command groups (`claim_lines.clearing_queries` of
    PERIOD, as one UNION ALL with the values written in): what DuckDB is given."""
    from sqlalchemy import union_all
    from sqlalchemy.dialects import postgresql

    from tongban.config import Settings
    from tongban.contexts import build_node
    from tongban.db import make_engine, session_factory
    from tongban.medical import claim_lines

    engine = make_engine(url)
    node = build_node(
        Settings(database_url=url, embedded_worker=False, secret_key="bench"),
        session_factory(engine),
    )
    with node.session_factory() as s:
        stmt = union_all(*claim_lines.clearing_queries(s, PERIOD))
        sql = str(
            stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        )
    engine.dispose()
    return sql


def duckdb_from_postgres(url: str, repeat: int) -> dict[str, Any]:
    """The reference: the claim lines the command groups, loaded from PostgreSQL into a
    DuckDB table (COPY … TO STDOUT, then DuckDB's CSV reader; timed on its own), and one
    DuckDB GROUP BY over them of what `load_aggregate` asks the database (per city pair:
    claims, reversals, fund), the median of `repeat`."""
    import duckdb
    import psycopg

    sql = _claim_lines_sql(url)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    con = duckdb.connect()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "claims.csv"
        t = time.perf_counter()
        with (
            psycopg.connect(dsn) as pg,
            pg.cursor() as cur,
            path.open("wb") as out,
            cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as cp,
        ):
            for block in cp:
                out.write(block)
        export_s = time.perf_counter() - t
        t = time.perf_counter()
        con.execute(
            f"CREATE TABLE claims AS SELECT * FROM read_csv('{path}', header = false, "
            "columns = {'insured_j': 'INTEGER', 'treatment_j': 'INTEGER', "
            "'insured_city': 'INTEGER', 'treatment_city': 'INTEGER', 'fund': 'BIGINT', "
            "'sign': 'INTEGER'})"
        )
        import_s = time.perf_counter() - t
    group_s, rows = median_of(
        repeat,
        lambda: con.execute(
            "SELECT insured_j, treatment_j, insured_city, treatment_city, "
            "count(*) FILTER (WHERE sign > 0), count(*) FILTER (WHERE sign < 0), sum(fund) "
            "FROM claims GROUP BY ALL"
        ).fetchall(),
    )
    n = con.execute("SELECT count(*) FROM claims").fetchone()
    con.close()
    gross: dict[tuple[str, str], int] = {}
    for d, c, _, _, _, _, f in rows:
        if d != c:
            key = (f"{d:06d}", f"{c:06d}")
            gross[key] = gross.get(key, 0) + int(f)
    return {
        "rows": n[0] if n else 0,
        "load_export_seconds": export_s,
        "load_import_seconds": import_s,
        "load_seconds": export_s + import_s,
        "group_by_seconds": group_s,
        "gross": gross,
    }


@contextmanager
def clearing_database(
    pg_url: str, keep: str | None, n: int, tail_n: int
) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """The database to clear from, and what seeding it gave (None: not seeded yet). Without
    `keep`, a fresh one, dropped afterwards. With `keep`, the database of that name on the
    server, kept afterwards: reused when a run seeded it completely with the same N and
    tail (seeding 10 M settlements takes ~10 minutes), made again otherwise."""
    if not keep:
        with pg_database(pg_url, "bench_clear") as url:
            yield url, None
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    if not keep.replace("_", "").isalnum():
        raise SystemExit("--keep-db: letters, digits and _ only")
    base = make_url(pg_url).set(drivername="postgresql+psycopg")
    url = base.set(database=keep).render_as_string(hide_password=False)
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        exists = c.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": keep}
        ).first()
    seeded = None
    if exists:
        engine = create_engine(url)
        with engine.connect() as c:
            if c.execute(text("SELECT to_regclass('bench_seeded')")).scalar() is not None:
                row = c.execute(text("SELECT n, tail, info FROM bench_seeded")).first()
                if row is not None and (row.n, row.tail) == (n, tail_n):
                    seeded = json.loads(row.info)
        engine.dispose()
    if seeded is None:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{keep}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{keep}"'))
    admin.dispose()
    yield url, seeded


def _mark_seeded(url: str, n: int, tail_n: int, info: dict[str, Any]) -> None:
    """Mark a kept database seeded completely (what `clearing_database` reuses)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(text("CREATE TABLE bench_seeded (n bigint, tail bigint, info text)"))
        c.execute(
            text("INSERT INTO bench_seeded VALUES (:n, :t, :i)"),
            {"n": n, "t": tail_n, "i": json.dumps(info)},
        )
    engine.dispose()


def bench_clearing_db(
    pg_url: str,
    n: int,
    repeat: int = 3,
    tail: int | None = None,
    keep: str | None = None,
    before: str | None = None,
) -> dict[str, Any]:
    """Seed N settlements in a fresh database (and a `tail` settled since the last fold,
    0.1 % of N by default), or reuse the one `keep` names; clear them `repeat` times,
    each in a child process as the command does (median time; peak RSS the largest);
    compare with one DuckDB GROUP BY over the same claim lines loaded from PostgreSQL
    (the load timed apart) and with one plain GROUP BY in PostgreSQL. With `before` (a
    tree's src directory), the command is also run with that tree's code, in turn with
    the working tree's (its own median and ratio)."""
    import subprocess

    from sqlalchemy import create_engine, text

    from tongban.catalog import service as catalog
    from tongban.config import Settings
    from tongban.contexts import build_node
    from tongban.db import make_engine, session_factory
    from tongban.migrate import upgrade
    from tongban.regions import service as regions

    tail_n = max(1, n // 1000) if tail is None else tail
    with clearing_database(pg_url, keep, n, tail_n) as (url, seeded):
        if seeded is None:
            upgrade(url)
            engine = make_engine(url)
            node = build_node(
                Settings(database_url=url, embedded_worker=False, secret_key="bench"),
                session_factory(engine),
            )
            with node.transaction() as s:
                regions.load_reference_data(s)
                catalog.load_catalogue(s)
            engine.dispose()
            seed_s, inst = seed_settlements(url, n)
            entries_s = seed_entries(url, inst)
            print(
                f"seeded {n:,} settlements in {seed_s:.1f} s, their chain entries in "
                f"{entries_s:.1f} s",
                file=sys.stderr,
            )
            folded = fold_all(url)
            # Settled since the last fold: the tail the command folds before reading (the
            # children never commit, so a kept database keeps it unfolded).
            _, tail_inst = seed_settlements(url, tail_n, prefix="L", bulk=False)
            seed_entries(url, tail_inst)
            seeded = {"seed_seconds": seed_s, "folded": folded}
            if keep:
                _mark_seeded(url, n, tail_n, seeded)
        else:
            print(
                f"reusing the seeded database {keep!r} (its (b) is the seeding run's)",
                file=sys.stderr,
            )
            upgrade(url)  # (a migration added since it was seeded)
        seed_s, folded = seeded["seed_seconds"], seeded["folded"]
        runs: list[dict[str, Any]] = []
        scans: list[dict[str, Any]] = []
        olds: list[dict[str, Any]] = []
        modes: list[tuple[list[dict[str, Any]], list[str], str | None]] = [
            (runs, [], None),
            (scans, ["--rescan"], None),
        ]
        if before:  # the tally with the before tree's code, in turn with the rest
            modes.insert(1, (olds, [], before))
        for _ in range(repeat):  # alternating: the tally, (before,) then the rescan
            for out, extra, tree in modes:
                env = None if tree is None else {**os.environ, "PYTHONPATH": tree}
                child = subprocess.run(
                    [sys.executable, __file__, "--clear-db-child", url, *extra],
                    capture_output=True,
                    text=True,
                    check=True,
                    env=env,
                )
                out.append(json.loads(child.stdout.strip().splitlines()[-1]))
        got = runs[-1]
        duck = duckdb_from_postgres(url, repeat)
        ref_engine = create_engine(url)
        with ref_engine.connect() as c:
            t = time.perf_counter()
            rows = c.execute(
                text(
                    "SELECT insured_jurisdiction, treatment_jurisdiction, SUM(fund) FROM ("
                    "SELECT insured_jurisdiction, treatment_jurisdiction, fund FROM "
                    "med_settlement WHERE period = :p AND NOT (status = 'reversed' AND "
                    "reversal_period = :p) UNION ALL SELECT insured_jurisdiction, "
                    "treatment_jurisdiction, -fund FROM med_settlement WHERE "
                    "reversal_period = :p AND period != :p) x GROUP BY 1, 2"
                ),
                {"p": PERIOD},
            ).all()
            sql_s = time.perf_counter() - t
        ref_engine.dispose()
    expected = {(d, c): int(a) for d, c, a in rows if d != c}
    for r in (got, scans[-1], *olds[-1:]):
        if {(d, c): a for d, c, a in r["gross"]} != expected or duck["gross"] != expected:
            raise AssertionError("the tally, the rescan, DuckDB and the SQL GROUP BY disagree")
    if (got["claims"], got["reversals"]) != (scans[-1]["claims"], scans[-1]["reversals"]):
        raise AssertionError("the tally and the rescan count different claims")
    command = statistics.median(r["load_seconds"] + r["finish_seconds"] for r in runs)
    before_s = (
        statistics.median(r["load_seconds"] + r["finish_seconds"] for r in olds) if olds else None
    )

    def cpu_ms(rs: list[dict[str, Any]], key: str) -> float | None:
        values = [r[key] for r in rs if r.get(key) is not None]
        return round(statistics.median(values) * 1000, 1) if values else None

    rescan = statistics.median(r["load_seconds"] + r["finish_seconds"] for r in scans)
    with_load = duck["load_seconds"] + duck["group_by_seconds"]
    return {
        "settlements": n + tail_n,
        "repeat": repeat,
        "seed_seconds": round(seed_s, 1),
        "tally_fold_entries": folded["entries"],
        "tally_fold_seconds": round(folded["fold_seconds"], 2),
        "tally_fold_us_per_claim": round(folded["fold_seconds"] / max(n, 1) * 1e6, 2),
        "tally_rebuild_seconds": round(folded["rebuild_seconds"], 2),
        "tail_settlements": tail_n,
        "tail_entries": got["tail_entries"],
        "tail_fold_seconds": round(statistics.median(r["fold_tail_seconds"] for r in runs), 4),
        "tally_command_seconds": round(command, 4),
        "command_process_cpu_ms": cpu_ms(runs, "process_cpu_seconds"),
        "command_backend_cpu_ms": cpu_ms(runs, "backend_cpu_seconds"),
        "before_src": before,
        "before_command_seconds": None if before_s is None else round(before_s, 4),
        "before_fold_tail_seconds": (
            round(statistics.median(r["fold_tail_seconds"] for r in olds), 4) if olds else None
        ),
        "before_process_cpu_ms": cpu_ms(olds, "process_cpu_seconds"),
        "before_backend_cpu_ms": cpu_ms(olds, "backend_cpu_seconds"),
        "ratio_before_to_duckdb_group_by": (
            None if before_s is None else round(before_s / duck["group_by_seconds"], 2)
        ),
        "ratio_tally_to_duckdb_group_by": round(command / duck["group_by_seconds"], 2),
        "rescan_load_seconds": round(statistics.median(r["load_seconds"] for r in scans), 3),
        "rescan_command_seconds": round(rescan, 3),
        "ratio_rescan_to_duckdb_group_by": round(rescan / duck["group_by_seconds"], 2),
        "ratio_rescan_to_duckdb_load_and_group_by": round(rescan / with_load, 2),
        "load_seconds": round(statistics.median(r["load_seconds"] for r in runs), 3),
        "finish_seconds": round(statistics.median(r["finish_seconds"] for r in runs), 4),
        "command_seconds": round(command, 4),
        "duckdb_rows": duck["rows"],
        "duckdb_load_from_postgresql_seconds": round(duck["load_seconds"], 3),
        "duckdb_load_export_seconds": round(duck["load_export_seconds"], 3),
        "duckdb_load_import_seconds": round(duck["load_import_seconds"], 3),
        "duckdb_group_by_seconds": round(duck["group_by_seconds"], 4),
        "postgresql_group_by_seconds": round(sql_s, 3),
        "rss_before_mb": round(statistics.median(r["rss_before_kb"] for r in runs) / 1024),
        "peak_rss_mb": round(max(r["vmhwm_kb"] for r in runs) / 1024),
        "rescan_peak_rss_mb": round(max(r["vmhwm_kb"] for r in scans) / 1024),
        "claims": got["claims"],
        "reversals": got["reversals"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pg-url", help="PostgreSQL server URL (fresh databases are created)")
    p.add_argument("--sqlite", action="store_true", help="latency against SQLite instead")
    p.add_argument("--claims", type=int, default=10_000_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--rate", type=float, default=20.0, help="requests per second")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--skip-clearing", action="store_true")
    p.add_argument("--quick", action="store_true", help="1M claims, 5 s of each call")
    p.add_argument(
        "--tail",
        type=int,
        default=None,
        help="settlements since the last fold, which the command folds before reading "
        "(default 0.1 %% of --db-claims: 10,000 at 10 M; give 10000 at 1 M to time the "
        "10 M run's tail on a smaller database)",
    )
    p.add_argument(
        "--db-claims",
        type=int,
        default=None,
        help="settlements seeded in PostgreSQL for the clearing from the database (default "
        "--claims; 0 skips it)",
    )
    p.add_argument(
        "--keep-db",
        metavar="NAME",
        help="clear from the database NAME on the server and keep it: seeded on the first "
        "run, reused by later runs with the same --db-claims and --tail",
    )
    p.add_argument(
        "--before-src",
        metavar="DIR",
        help="also clear with the code of another tree (its src directory, e.g. from "
        "`git archive <commit> src`), in turn with the working tree's, printing both ratios",
    )
    p.add_argument("--clear-db-child", metavar="URL", help=argparse.SUPPRESS)
    p.add_argument("--rescan", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.clear_db_child:
        clear_from_database_child(args.clear_db_child, args.rescan)
        return
    if args.quick:
        args.claims, args.repeat, args.seconds = min(args.claims, 1_000_000), 1, 5.0
    out: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    if not args.skip_clearing:
        c = bench_clearing(args.claims, args.repeat)
        out["clearing"] = c
        print()
        print(f"clearing of {c['claims']:,} claims in memory (median of {c['repeat']})")
        print(f"  {'tongban clearing (200,000-row slices)':44} {c['clearing_seconds']:8.3f} s")
        print(f"  {'tongban clearing (one frame)':44} {c['clearing_single_frame_seconds']:8.3f} s")
        print(f"  {'DuckDB GROUP BY (reference floor)':44} {c['duckdb_group_by_seconds']:8.3f} s")
        print(
            f"  {'ratio (clearing / reference)':44} {c['ratio']:8.2f}  aim <= 2: {_met(c['ratio'])}"
        )
        print(f"  {'ratio (one frame / reference)':44} {c['ratio_single_frame']:8.2f}")
        print(
            f"  {c['jurisdiction_pairs']} jurisdiction pairs, {c['city_pairs']} city pairs, "
            f"{c['statements']} statements, {c['reversals']:,} reversals; results equal"
        )
        db_claims = args.claims if args.db_claims is None else args.db_claims
        if args.pg_url and db_claims:
            d = bench_clearing_db(
                args.pg_url, db_claims, args.repeat, args.tail, args.keep_db, args.before_src
            )
            out["clearing_from_database"] = d
            print(
                f"clearing of {d['settlements']:,} settlements from PostgreSQL as the command "
                f"runs it (median of {d['repeat']}, child processes, tally and rescan alternating)"
            )
            r = d["ratio_tally_to_duckdb_group_by"]
            print(
                f"  (a) {'with the tally up to date: fold the tail':40} "
                f"{d['tail_fold_seconds']:8.4f} s ({d['tail_entries']:,} chain entries, "
                f"{d['tail_settlements']:,} settlements since the last fold)"
            )
            print(
                f"      {'the command in all (fold + read + finish)':40} "
                f"{d['tally_command_seconds']:8.4f} s (finish {d['finish_seconds']:.4f} s)"
            )
            print(
                f"      {'DuckDB: one GROUP BY over the same claims':40} "
                f"{d['duckdb_group_by_seconds']:8.4f} s ({d['duckdb_rows']:,} rows, loaded "
                f"from PostgreSQL in {d['duckdb_load_from_postgresql_seconds']:.2f} s, not in "
                "the ratio)"
            )
            print(f"      {'ratio command / DuckDB GROUP BY':40} {r:8.2f}  aim <= 2: {_met(r)}")
            print(
                f"      {'CPU: the command / its backend':40} {d['command_process_cpu_ms']} ms / "
                f"{d['command_backend_cpu_ms']} ms (medians; the backend's from /proc)"
            )
            if d["before_src"]:
                rb = d["ratio_before_to_duckdb_group_by"]
                print(
                    f"      {'before (' + d['before_src'] + ')':40} "
                    f"{d['before_command_seconds']:8.4f} s (fold "
                    f"{d['before_fold_tail_seconds']:.4f} s; CPU {d['before_process_cpu_ms']} / "
                    f"{d['before_backend_cpu_ms']} ms), ratio {rb:.2f}  aim <= 2: {_met(rb)}"
                )
            print(
                f"  (b) {'the cost of keeping the tally: folding':40} "
                f"{d['tally_fold_seconds']:8.2f} s for {d['tally_fold_entries']:,} chain entries"
                f" ({d['tally_fold_us_per_claim']:.2f} µs per claim, paid by the fold job as "
                "claims commit; a rebuild from the rows "
                f"{d['tally_rebuild_seconds']:.2f} s)"
            )
            r1 = d["ratio_rescan_to_duckdb_group_by"]
            r2 = d["ratio_rescan_to_duckdb_load_and_group_by"]
            print(
                f"  (c) {'--rescan: GROUP BY city pair in PostgreSQL':40} "
                f"{d['rescan_command_seconds']:8.3f} s (load {d['rescan_load_seconds']:.3f} s)"
            )
            print(f"      {'ratio rescan / DuckDB GROUP BY':40} {r1:8.2f}  aim <= 2: {_met(r1)}")
            print(
                f"      {'ratio rescan / DuckDB (load + GROUP BY)':40} {r2:8.2f}  "
                f"aim <= 2: {_met(r2)}"
            )
            print(
                f"  {'one plain GROUP BY in PostgreSQL':44} {d['postgresql_group_by_seconds']:8.3f} s"
            )
            print(
                f"  {'peak RSS of the clearing process (VmHWM)':44} {d['peak_rss_mb']:8} MB "
                f"(rescan {d['rescan_peak_rss_mb']} MB; {d['rss_before_mb']} MB before the "
                "load); results equal"
            )
        else:
            print("clearing from the database, peak RSS: not measured (needs --pg-url)")
    if not args.skip_latency:
        lt = bench_latency(args)
        out["latency"] = lt
        _print_latency(lt)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, ensure_ascii=False, indent=2))
    print(f"\nwrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
