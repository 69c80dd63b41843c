"""Case submissions per second through the HTTP API on PostgreSQL, beside a bare FastAPI
endpoint doing one INSERT into the same database: the ratio is the figure.

Both servers run the same way — uvicorn in a subprocess on 127.0.0.1, one worker
process, the same log level — and are driven identically: a bounded number of requests
after a warm-up, from a small fixed number of client threads using httpx.

Every matter of the catalogue requires at least one material, and an uploaded material
belongs to one case only, so one tongban "submission" is an upload of each required
material (POST /api/v1/attachments) followed by POST /api/v1/cases: the upload is part
of the submission's cost, as it is for a real applicant.

Usage (`make bench` starts a throwaway PostgreSQL server and runs this):
    python benchmarks/bench_cases.py --pg-url postgresql+psycopg://user@127.0.0.1:5432/postgres
Writes var/bench/cases.json. Everything stays on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, Field

from tongban.devserver import free_port, pg_database
from tongban.devserver import running as server

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench" / "cases.json"
REQUEST_TIMEOUT = 30.0

#: A 江苏 matter a resident of 安徽 applies for online: one required material.
MATTER = "YRD-BDC-0001"
JURISDICTION, CITY = "320000", "320500"
RESIDENT = "wangfang"
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)
REF_TABLE = "bench_reference_row"


# --- the reference: the least a FastAPI endpoint writing one row can cost ---------------


class RowCreate(BaseModel):
    """The reference endpoint's body (module level: FastAPI resolves the annotation here)."""

    matter_code: str = Field(min_length=1, max_length=40)
    payload: dict[str, Any] = Field(default_factory=dict)


def reference_app(database_url: str) -> Any:
    """One POST endpoint doing a single INSERT of a small row, with tongban's engine setup."""
    from fastapi import FastAPI
    from sqlalchemy import JSON, Column, DateTime, MetaData, String, Table, Uuid, insert

    from tongban.db import make_engine

    engine = make_engine(database_url)
    rows = Table(
        REF_TABLE,
        MetaData(),
        Column("id", Uuid, primary_key=True),
        Column("matter_code", String(40), nullable=False),
        Column("payload", JSON, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )

    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/rows", status_code=201)
    def create(body: RowCreate) -> dict[str, str]:
        row_id = uuid.uuid4()
        with engine.begin() as conn:
            conn.execute(
                insert(rows).values(
                    id=row_id,
                    matter_code=body.matter_code,
                    payload=body.payload,
                    created_at=datetime.now(UTC),
                )
            )
        return {"id": str(row_id)}

    return app


def create_reference_table(database_url: str) -> None:
    from sqlalchemy import text

    from tongban.db import make_engine

    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                f"CREATE TABLE {REF_TABLE} (id uuid PRIMARY KEY, matter_code varchar(40) NOT NULL,"
                " payload json NOT NULL, created_at timestamptz NOT NULL)"
            )
        )
    engine.dispose()


def serve_reference(database_url: str, port: int) -> None:
    import uvicorn

    # The same uvicorn settings as `tongban serve` (one process, log level info).
    uvicorn.run(reference_app(database_url), host="127.0.0.1", port=port, log_level="info")


# --- database and servers ---------------------------------------------------------------


def prepare(database_url: str) -> str:
    """Migrate, load the demo federation and the reference table; returns the server version."""
    from sqlalchemy import text

    from tongban.contexts import registry
    from tongban.db import make_engine, session_factory, transaction
    from tongban.demo import load_demo
    from tongban.migrate import upgrade

    upgrade(database_url)
    engine = make_engine(database_url)
    with transaction(session_factory(engine)) as session:
        load_demo(session, registry())
        version = str(session.execute(text("SHOW server_version")).scalar())
    engine.dispose()
    create_reference_table(database_url)
    return version


def count_cases(database_url: str) -> int:
    from sqlalchemy import text

    from tongban.db import make_engine

    engine = make_engine(database_url)
    with engine.connect() as conn:
        n = int(conn.execute(text("SELECT count(*) FROM service_case")).scalar_one())
    engine.dispose()
    return n


# --- the load ------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    requests: int
    http_requests_each: int
    seconds: float
    per_second: float
    p50_ms: float
    p95_ms: float
    errors: int


def percentile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def drive(
    name: str,
    base: str,
    one: Callable[[httpx.Client, int], None],
    *,
    requests: int,
    warmup: int,
    concurrency: int,
    http_requests_each: int = 1,
    on_measure: Callable[[], None] | None = None,
) -> Result:
    """Run `one(client, i)` `warmup` then `requests` times from `concurrency` threads,
    each thread with its own keep-alive client; time the second batch."""
    local = threading.local()
    clients: list[httpx.Client] = []
    lock = threading.Lock()

    def client() -> httpx.Client:
        c = getattr(local, "client", None)
        if c is None:
            c = httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT)
            local.client = c
            with lock:
                clients.append(c)
        return c

    def timed(i: int) -> tuple[float, str | None]:
        t0 = time.perf_counter()
        try:
            one(client(), i)
        except Exception as e:  # noqa: BLE001 - counted and reported, never hidden
            return time.perf_counter() - t0, f"{type(e).__name__}: {e}"
        return time.perf_counter() - t0, None

    try:
        with ThreadPoolExecutor(concurrency, thread_name_prefix=name) as pool:
            warm = list(pool.map(timed, range(warmup)))
            if any(err for _, err in warm):
                raise RuntimeError(f"{name}: warm-up failed: {next(e for _, e in warm if e)}")
            if on_measure is not None:
                on_measure()
            t0 = time.perf_counter()
            results = list(pool.map(timed, range(warmup, warmup + requests)))
            seconds = time.perf_counter() - t0
    finally:
        for c in clients:
            c.close()
    errors = [e for _, e in results if e]
    if errors:
        print(f"{name}: {len(errors)} failed request(s), first: {errors[0]}", file=sys.stderr)
    ms = [t * 1000 for t, _ in results]
    return Result(
        name=name,
        requests=requests,
        http_requests_each=http_requests_each,
        seconds=round(seconds, 3),
        per_second=round(requests / seconds, 1),
        p50_ms=round(percentile(ms, 50), 1),
        p95_ms=round(percentile(ms, 95), 1),
        errors=len(errors),
    )


# --- a valid application ---------------------------------------------------------------

_PATTERN_CANDIDATES = ("320502199003071234", "6222021234567890", "2025-01", "苏E12345", "123456")


def sample_value(prop: dict[str, Any]) -> Any:
    if prop.get("enum"):
        return prop["enum"][0]
    kind = prop.get("type", "string")
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        return prop.get("minimum", 1)
    if prop.get("format") == "date":
        return date.today().isoformat()
    if "pattern" in prop:
        return next(c for c in _PATTERN_CANDIDATES if re.search(prop["pattern"], c))
    text = "长三角一体化示范区测试路100号"
    return text[: prop.get("maxLength", len(text))].ljust(prop.get("minLength", 1), "号")


def sample_form(schema: dict[str, Any]) -> dict[str, Any]:
    import jsonschema

    props = schema.get("properties", {})
    data = {k: sample_value(props.get(k, {})) for k in schema.get("required", [])}
    jsonschema.Draft202012Validator(schema).validate(data)
    return data


def check(r: httpx.Response, status: int) -> httpx.Response:
    if r.status_code != status:
        raise RuntimeError(
            f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}"
        )
    return r


# --- main ----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tongban.demo import DEMO_PASSWORD

    with (
        pg_database(args.pg_url, "bench") as db_url,
        tempfile.TemporaryDirectory(prefix="tongban-bench-") as tmp,
    ):
        tmpdir = Path(tmp)
        print("preparing the database (migrations, demo federation) ...", flush=True)
        pg_version = prepare(db_url)
        env = {
            **os.environ,
            "TONGBAN_DATABASE_URL": db_url,
            "TONGBAN_EMBEDDED_WORKER": "false",
            "TONGBAN_UPLOAD_DIR": str(tmpdir / "uploads"),
            "TONGBAN_SECRET_KEY": "bench-secret-key",
        }
        tongban_port, ref_port = free_port(), free_port()
        tongban_argv = [
            sys.executable,
            "-m",
            "tongban",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(tongban_port),
            "--no-worker",
        ]
        ref_argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve-reference",
            "--port",
            str(ref_port),
            "--database-url",
            db_url,
        ]
        load = {"requests": args.requests, "warmup": args.warmup, "concurrency": args.concurrency}

        with server("reference", ref_argv, env, ref_port, tmpdir) as base:
            body = {"matter_code": MATTER, "payload": {"applicant": "王芳", "city": CITY}}

            def insert(c: httpx.Client, _i: int) -> None:
                check(c.post("/rows", json=body), 201)

            print(
                f"reference: {args.requests} requests after {args.warmup} warm-up ...", flush=True
            )
            reference = drive("reference: bare FastAPI INSERT", base, insert, **load)

        with server("tongban", tongban_argv, env, tongban_port, tmpdir) as base:
            token = check(
                httpx.post(
                    f"{base}/api/v1/auth/token",
                    timeout=REQUEST_TIMEOUT,
                    data={"username": RESIDENT, "password": DEMO_PASSWORD},
                ),
                200,
            )
            auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
            if not args.cold_token:
                # Use the token once before the concurrent load: its first use records
                # last_used_at, and that UPDATE, flushed by the async upload endpoint on the
                # event loop while another request holds the row, can block the loop for
                # good. --cold-token skips this, to check that this is fixed.
                check(httpx.get(f"{base}/api/v1/me", headers=auth, timeout=REQUEST_TIMEOUT), 200)
            matter = check(
                httpx.get(f"{base}/api/v1/matters/{MATTER}", headers=auth, timeout=REQUEST_TIMEOUT),
                200,
            ).json()
            materials = [m["code"] for m in matter["materials"] if m["required"]]
            form = sample_form(matter["form_schema"])
            parts: dict[str, list[float]] = {"upload": [], "case": []}
            parts_lock = threading.Lock()

            def submit(c: httpx.Client, _i: int) -> None:
                t0 = time.perf_counter()
                ids = [
                    check(
                        c.post(
                            "/api/v1/attachments",
                            headers=auth,
                            data={"material_code": m},
                            files={"file": (f"{m}.pdf", PDF, "application/pdf")},
                        ),
                        201,
                    ).json()["id"]
                    for m in materials
                ]
                t1 = time.perf_counter()
                check(
                    c.post(
                        "/api/v1/cases",
                        headers=auth,
                        json={
                            "matter_code": MATTER,
                            "competent_jurisdiction": JURISDICTION,
                            "competent_city": CITY,
                            "mode": "online",
                            "form_data": form,
                            "consent": True,
                            "attachment_ids": ids,
                        },
                    ),
                    201,
                )
                t2 = time.perf_counter()
                with parts_lock:
                    parts["upload"].append((t1 - t0) * 1000)
                    parts["case"].append((t2 - t1) * 1000)

            def reset_parts() -> None:
                for v in parts.values():
                    v.clear()

            print(
                f"tongban: {args.requests} submissions after {args.warmup} warm-up ...", flush=True
            )
            tongban = drive(
                f"tongban: upload x{len(materials)} + POST /api/v1/cases",
                base,
                submit,
                http_requests_each=len(materials) + 1,
                on_measure=reset_parts,
                **load,
            )
        cases = count_cases(db_url)

    return {
        "benchmark": "case submissions per second through the HTTP API on PostgreSQL",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "submission": f"{len(materials)} upload(s) of the required materials "
        f"({', '.join(materials)}) + POST /api/v1/cases, matter {MATTER} "
        f"({JURISDICTION}/{CITY}) by {RESIDENT}; the upload counts in the cost",
        "reference": "bare FastAPI app, one sync POST endpoint, one INSERT of a small row, "
        "same engine settings (tongban.db.make_engine)",
        "servers": "uvicorn, 1 process each, 127.0.0.1, log level info; tongban with --no-worker",
        "postgresql": pg_version,
        "python": platform.python_version(),
        "load": load,
        "results": [asdict(tongban), asdict(reference)],
        "ratio_tongban_to_reference": round(tongban.per_second / reference.per_second, 3),
        "parts_p50_ms": {
            "uploads": round(percentile(parts["upload"], 50), 1),
            "post_case": round(percentile(parts["case"], 50), 1),
        },
        "cases_in_database_after_run": cases,
    }


def print_table(report: dict[str, Any]) -> None:
    rows = report["results"]
    head = f"{'name':<44} {'requests':>8} {'seconds':>8} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8}"
    print()
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['name']:<44} {r['requests']:>8} {r['seconds']:>8.2f} {r['per_second']:>8.1f}"
            f" {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f}"
        )
    print("-" * len(head))
    print(f"ratio tongban/reference: {report['ratio_tongban_to_reference']:.3f}")
    print(f"one submission = {report['submission']}")
    print(
        f"p50 of the parts of a submission (ms): {report['parts_p50_ms']}; "
        f"cases in the database after the run: {report['cases_in_database_after_run']}"
    )
    print(f"load: {report['load']}; PostgreSQL {report['postgresql']}; {report['servers']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument(
        "--pg-url",
        default=os.environ.get("TONGBAN_BENCH_PG_URL"),
        help="PostgreSQL server URL whose user may create databases",
    )
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument(
        "--cold-token", action="store_true", help="start the load with a token never used before"
    )
    p.add_argument("--serve-reference", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--database-url", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_reference:
        serve_reference(args.database_url, args.port)
        return 0
    if not args.pg_url:
        p.error("no PostgreSQL server: pass --pg-url or set TONGBAN_BENCH_PG_URL")
    if not (
        1 <= args.requests <= 100_000 and 0 <= args.warmup <= 10_000 and 1 <= args.concurrency <= 64
    ):
        p.error("requests, warmup or concurrency out of bounds")
    report = run(args)
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"written to {args.out}")
    failed = sum(r["errors"] for r in report["results"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
