"""Work orders: routing decisions per second for random locations across the 41 cities,
and the latency of Open311 `GET /open311/v2/requests.json` over 100,000 work orders on
PostgreSQL.

1. Routing (in process, no server): points drawn uniformly inside the union of the 41
   city areas; a "decision" is `RegionIndex.locate` — the city, the demonstration-zone
   district and every other jurisdiction within the 500 m border distance. Beside it,
   the vectorised point-in-city lookup (no border check) as the reference of what GEOS
   does without per-point Python, and `service.route` (adds the authority lookups in the
   database) on a smaller sample.
2. Open311: a fresh database on the given server is migrated and loaded with the
   reference data, then 100,000 work orders (random cities, categories, states, dates
   over 180 days) are bulk-inserted. `tongban serve` runs in a uvicorn subprocess on
   127.0.0.1 (no worker), and one client sends a bounded number of GET requests after a
   warm-up: the default query of a city (last 90 days, its first page of 50), a
   filtered one (service_code + status=open), and one request by id.

Usage (`make bench` starts a throwaway PostgreSQL and passes --pg-url):
    python benchmarks/bench_tickets.py --pg-url postgresql+psycopg://user@127.0.0.1:5432/postgres
Writes var/bench/tickets.json. Everything stays on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
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
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tongban.devserver import free_port, pg_database, running

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench" / "tickets.json"
REQUEST_TIMEOUT = 60.0


# --- routing -----------------------------------------------------------------------------


def random_points(n: int, seed: int = 20261123) -> tuple[np.ndarray, np.ndarray]:
    """`n` points uniformly inside the union of the city areas (rejection sampling)."""
    from tongban.tickets import geo

    index = geo.load()
    lo_lon, lo_lat, hi_lon, hi_lat = index.bounds()
    rng = np.random.default_rng(seed)
    lons: list[float] = []
    lats: list[float] = []
    while len(lons) < n:
        cand_lon = rng.uniform(lo_lon, hi_lon, n)
        cand_lat = rng.uniform(lo_lat, hi_lat, n)
        codes = index.city_codes_of(cand_lon, cand_lat)
        for lon, lat, code in zip(cand_lon, cand_lat, codes, strict=True):
            if code is not None and len(lons) < n:
                lons.append(float(lon))
                lats.append(float(lat))
    return np.array(lons), np.array(lats)


def bench_routing(n: int) -> dict[str, Any]:
    from tongban.tickets import geo

    index = geo.load()
    lons, lats = random_points(n)
    pairs = list(zip(lons.tolist(), lats.tolist(), strict=True))
    for lon, lat in pairs[:1000]:  # warm-up
        index.locate(lon, lat, 500.0)
    t0 = time.perf_counter()
    placements = [index.locate(lon, lat, 500.0) for lon, lat in pairs]
    single = time.perf_counter() - t0
    t0 = time.perf_counter()
    index.city_codes_of(lons, lats)
    batch = time.perf_counter() - t0
    cities = {p.city_code for p in placements if p}
    return {
        "points": n,
        "decisions_per_second": n / single,
        "vectorised_lookups_per_second": n / batch,
        "joint_share": sum(1 for p in placements if p and p.joint) / n,
        "cities_hit": len(cities),
    }


def bench_route_service(database_url: str, n: int) -> dict[str, Any]:
    """`service.route` (geometry + authority lookups) against the database."""
    from tongban.config import Settings
    from tongban.contexts import build_node
    from tongban.db import make_engine, session_factory
    from tongban.tickets import service

    lons, lats = random_points(n, seed=7)
    engine = make_engine(database_url)
    factory = build_node(
        Settings(database_url=database_url), session_factory(engine)
    ).session_factory
    rng = random.Random(7)
    with factory() as session:
        codes = list(service.taxonomy(session).categories)
        for i in range(50):  # warm-up
            service.route(session, codes[i % len(codes)], lat=float(lats[i]), lon=float(lons[i]))
        t0 = time.perf_counter()
        for lon, lat in zip(lons.tolist(), lats.tolist(), strict=True):
            service.route(session, rng.choice(codes), lat=lat, lon=lon)
        elapsed = time.perf_counter() - t0
    engine.dispose()
    return {"points": n, "routes_per_second": n / elapsed}


# --- Open311 over 100,000 work orders -------------------------------------------------------


def load(database_url: str, n: int) -> dict[str, Any]:
    """Migrate, load the reference data and bulk-insert `n` work orders."""
    from sqlalchemy import insert, select, text

    from tongban.config import Settings
    from tongban.contexts import build_node
    from tongban.db import make_engine, session_factory, transaction
    from tongban.migrate import upgrade
    from tongban.regions import service as regions
    from tongban.regions.models import Authority
    from tongban.tickets import domain, geo
    from tongban.tickets.models import WorkOrder
    from tongban.tickets.service import common, intake

    upgrade(database_url)
    engine = make_engine(database_url)
    factory = build_node(
        Settings(database_url=database_url), session_factory(engine)
    ).session_factory
    with transaction(factory) as session:
        regions.load_reference_data(session)
        version = str(session.execute(text("SHOW server_version")).scalar())
        auth = {
            (a.city_code, a.type): (a.id, a.name)
            for a in session.scalars(select(Authority).where(Authority.city_code.is_not(None)))
        }
    index = geo.load()
    with factory() as session:
        taxonomy = common.taxonomy(session)
    cats = list(taxonomy.categories.values())
    lons, lats = random_points(n, seed=11)
    city_codes = index.city_codes_of(lons, lats)
    city_j = {a.code: a.jurisdiction_code for a in index.cities}
    states = [s.value for s in domain.TicketState]
    weights = [3 if s in ("closed",) else 1 for s in states]
    rng = random.Random(11)
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    rows = []
    for i in range(n):
        c = cats[i % len(cats)]
        city = city_codes[i]
        assert city is not None
        a_id, a_name = auth.get((city, c.authority_type)) or auth[(city, "government_service")]
        created = now - timedelta(seconds=rng.uniform(0, 180 * 86400))
        state = rng.choices(states, weights)[0]
        rows.append(
            {
                "id": uuid.uuid4(),
                "number": f"GD{city}B{i:09d}",
                "channel": rng.choice(["web", "hotline", "grid", "open311"]),
                "category_code": c.code,
                "urgency": c.urgencies[0],
                "description": f"基准测试工单 {i}：{c.name}",
                "address": f"{c.group}测试地址 {i} 号",
                "lat": float(lats[i]),
                "lon": float(lons[i]),
                "cell": intake.cell_of(float(lats[i]), float(lons[i])),
                "jurisdiction_code": city_j[city],
                "city_code": city,
                "authority_id": a_id,
                "authority_name": a_name,
                "routing_note": "",
                "joint": False,
                "state": state,
                "created_at": created,
                "updated_at": created + timedelta(hours=rng.uniform(0, 72)),
                "due_at": created + timedelta(days=13),
                "allotted_minutes": 13 * 480,
                "deadline_rule": "13 个工作日",
                "deadline_flag": "ok",
                "escalation_level": 0,
                "reopen_count": 0,
            }
        )
        if len(rows) == 5000:
            with transaction(factory) as session:
                session.execute(insert(WorkOrder), rows)
            rows = []
    if rows:
        with transaction(factory) as session:
            session.execute(insert(WorkOrder), rows)
    with engine.connect() as conn:
        conn.execute(text("ANALYZE ticket"))
        conn.commit()
    seconds = time.perf_counter() - t0
    engine.dispose()
    sample = [f"GD{city_codes[i]}B{i:09d}" for i in rng.sample(range(n), min(n, 1000))]
    return {"server_version": version, "work_orders": n, "load_seconds": seconds, "sample": sample}


@contextmanager
def server(database_url: str, logdir: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "TONGBAN_DATABASE_URL": database_url,
        "TONGBAN_SECRET_KEY": "bench-secret",
        "TONGBAN_EMBEDDED_WORKER": "false",
        "TONGBAN_UPLOAD_DIR": str(logdir / "uploads"),
    }
    argv = [sys.executable, "-m", "tongban", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--no-worker"]  # fmt: skip
    with running("tongban", argv, env, port, logdir) as base:
        yield base


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[k]


def timed_gets(base: str, paths: list[str], warmup: int) -> dict[str, Any]:
    times: list[float] = []
    sizes: list[int] = []
    with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT) as client:
        for p in paths[:warmup]:
            client.get(p).raise_for_status()
        for p in paths:
            t0 = time.perf_counter()
            r = client.get(p)
            times.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
            sizes.append(len(r.json()))
    return {
        "requests": len(paths),
        "p50_ms": percentile(times, 0.50),
        "p95_ms": percentile(times, 0.95),
        "mean_ms": statistics.fmean(times),
        "mean_results": statistics.fmean(sizes),
    }


def bench_open311(server_url: str, n: int, requests: int) -> dict[str, Any]:
    from tongban.tickets.geodata import CITY_CENTRES

    cities = sorted(CITY_CENTRES)
    rng = random.Random(5)
    with pg_database(server_url, "bench_tickets") as url, tempfile.TemporaryDirectory() as tmp:
        loaded = load(url, n)
        with server(url, Path(tmp)) as base:
            default = [
                f"/open311/v2/requests.json?jurisdiction_id={rng.choice(cities)}"
                for _ in range(requests)
            ]
            filtered = [
                f"/open311/v2/requests.json?jurisdiction_id={rng.choice(cities)}"
                f"&service_code=road_damage,street_light&status=open"
                for _ in range(requests)
            ]
            sample = loaded.pop("sample")
            ids = [
                f"/open311/v2/requests.json?service_request_id={rng.choice(sample)}"
                for _ in range(requests)
            ]
            return {
                **loaded,
                "default_query": timed_gets(base, default, warmup=10),
                "filtered_query": timed_gets(base, filtered, warmup=10),
                "by_id": timed_gets(base, ids, warmup=10),
            }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pg-url", required=True, help="PostgreSQL server URL (a database is created)")
    p.add_argument("--points", type=int, default=50_000)
    p.add_argument("--work-orders", type=int, default=100_000)
    p.add_argument("--requests", type=int, default=200)
    args = p.parse_args()
    routing = bench_routing(args.points)
    with pg_database(args.pg_url, "bench_tickets") as url:
        from tongban.config import Settings
        from tongban.contexts import build_node
        from tongban.db import make_engine, session_factory
        from tongban.migrate import upgrade
        from tongban.regions import service as regions

        upgrade(url)
        engine = make_engine(url)
        with build_node(Settings(database_url=url), session_factory(engine)).transaction() as s:
            regions.load_reference_data(s)
        engine.dispose()
        route_service = bench_route_service(url, min(5000, args.points))
    o311 = bench_open311(args.pg_url, args.work_orders, args.requests)
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "routing": routing,
        "route_service": route_service,
        "open311": o311,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, ensure_ascii=False, indent=2), "utf-8")
    print(f"PostgreSQL {o311['server_version']}, {o311['work_orders']:,} work orders "
          f"(bulk-loaded in {o311['load_seconds']:.1f} s)")  # fmt: skip
    print()
    print(f"{'routing (41 cities, 500 m border)':44} {'per second':>14}")
    print(
        f"{'  RegionIndex.locate (one point per call)':44} {routing['decisions_per_second']:>14,.0f}"
    )
    print(
        f"{'  reference: vectorised point-in-city only':44} {routing['vectorised_lookups_per_second']:>14,.0f}"
    )
    print(
        f"{'  service.route (+ authority lookups, PG)':44} {route_service['routes_per_second']:>14,.0f}"
    )
    print(f"  joint (border) share of random points: {routing['joint_share']:.2%}, "
          f"cities hit: {routing['cities_hit']}")  # fmt: skip
    print()
    print(f"{'GET /open311/v2/requests.json':44} {'p50 ms':>8} {'p95 ms':>8} {'results':>8}")
    for key, label in (
        ("default_query", "  jurisdiction_id (90 days, page 1 of 50)"),
        ("filtered_query", "  + service_code=2 codes & status=open"),
        ("by_id", "  service_request_id=one"),
    ):
        r = o311[key]
        print(f"{label:44} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['mean_results']:>8.0f}")
    print(f"\nwrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
