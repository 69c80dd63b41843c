"""Case submissions per second through the HTTP API on PostgreSQL, for the tree before
issue 11's kernel work and the working tree in the same run, beside a bare FastAPI
endpoint doing one INSERT into the same database: the ratios after/before and
after/reference are the figures.

Every server runs the same way — uvicorn in a subprocess on 127.0.0.1, one worker
process, the same log level — and is driven identically: a bounded number of requests
after a warm-up, from a small fixed number of client threads using httpx. The two
tongban servers (benchmarks/_before.py: PYTHONPATH at each tree's src) each get a
database of their own, migrated and loaded by their own code. The measured requests are
split into rounds, and in each round the reference, before and after take turns (the
order reversed every other round), so a change in the machine's load falls on all alike.

Every matter of the catalogue requires at least one material, and an uploaded material
belongs to one case only, so one tongban "submission" is an upload of each required
material (POST /api/v1/attachments) followed by POST /api/v1/cases: the upload is part
of the submission's cost, as it is for a real applicant.

Usage (`make bench` starts a throwaway PostgreSQL server and runs this):
    python benchmarks/bench_cases.py --pg-url postgresql+psycopg://user@127.0.0.1:5432/postgres
        [--requests 300] [--rounds 4] [--quick]
Prints, last, issue 14's figures with "met" / "not met" (ratio to the bare INSERT,
SQL statements per submission; the peak RSS is printed). Writes var/bench/cases.json.
Everything stays on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import _before
import httpx
from _before import Tree
from pydantic import BaseModel, Field

from tongban.devserver import ServerFailed, ServerProcess, free_port, pg_database

THIS = Path(__file__).resolve()
ROOT = THIS.parent.parent
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
#: Submissions made one after the other to count the server's SQL statements.
COUNTED = 20


@contextlib.contextmanager
def server(
    name: str, argv: list[str], env: dict[str, str], port: int, logdir: Path, pids: dict[str, int]
) -> Iterator[str]:
    """tongban.devserver.running, keeping the server's process id in `pids` (its peak
    RSS is read from /proc at the end)."""
    proc = ServerProcess(name, argv, env, f"http://127.0.0.1:{port}", logdir / f"{name}-{port}.log")
    proc.start()
    try:
        proc.wait_ready()
        assert proc.proc is not None
        pids[name] = proc.proc.pid
        yield proc.base_url
    finally:
        proc.stop()


def peak_rss_mib(pid: int) -> float | None:
    """VmHWM (the peak resident set) of process `pid`, in MiB; None where /proc has none."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) process `pid` has used so far, from /proc; None without it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_count(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


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
    """Migrate and load the demo federation with the code of the tree this process
    imports (run as `--prepare` with that tree's PYTHONPATH); returns the server version."""
    from sqlalchemy import text

    from tongban.db import make_engine, session_factory, transaction
    from tongban.demo import load_demo
    from tongban.migrate import upgrade

    upgrade(database_url)
    engine = make_engine(database_url)
    factory = session_factory(engine)
    try:
        from tongban.config import Settings
        from tongban.contexts import build_node, registry
    except ImportError:  # the tree before the kernel: one demo loader, global settings
        with transaction(factory) as session:
            load_demo(session)  # type: ignore[call-arg]
            version = str(session.execute(text("SHOW server_version")).scalar())
    else:  # sessions of a node, which carry its settings to the contexts' loaders
        settings = Settings(database_url=database_url, embedded_worker=False)
        with transaction(build_node(settings, factory).session_factory) as session:
            load_demo(session, registry())
            version = str(session.execute(text("SHOW server_version")).scalar())
    engine.dispose()
    return version


def prepare_tree(tree: Tree, database_url: str) -> str:
    """`prepare` in a process of `tree`'s own; returns the server version."""
    r = subprocess.run(
        [sys.executable, str(THIS), "--prepare", "--database-url", database_url],
        env=tree.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        tail = "\n".join(r.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{tree.title}: preparing the database failed:\n{tail}")
    return r.stdout.strip().splitlines()[-1]


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
    tree: str
    requests: int
    http_requests_each: int
    seconds: float
    per_second: float
    p50_ms: float
    p95_ms: float
    errors: int


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


@dataclass
class Target:
    """One server under load, and what its measured rounds added up to."""

    key: str  # "reference", "before", "after"
    name: str
    base: str
    one: Callable[[httpx.Client, int], None]
    http_requests_each: int = 1
    parts: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    done: int = 0
    #: A submission's two halves apart, (uploads, POST of the case), for split_cpu.
    split: (
        tuple[Callable[[httpx.Client], list[str]], Callable[[httpx.Client, list[str]], None]] | None
    ) = None

    def batch(self, start: int, count: int, concurrency: int) -> tuple[float, list[str]]:
        """Run `one(client, i)` for i in [start, start + count) from `concurrency`
        threads, each with its own keep-alive client; returns the seconds and the errors,
        and adds the latencies to this target's."""
        local = threading.local()
        clients: list[httpx.Client] = []
        lock = threading.Lock()

        def client() -> httpx.Client:
            c = getattr(local, "client", None)
            if c is None:
                c = httpx.Client(base_url=self.base, timeout=REQUEST_TIMEOUT)
                local.client = c
                with lock:
                    clients.append(c)
            return c

        def timed(i: int) -> tuple[float, str | None]:
            t0 = time.perf_counter()
            try:
                self.one(client(), i)
            except Exception as e:  # noqa: BLE001 - counted and reported, never hidden
                return time.perf_counter() - t0, f"{type(e).__name__}: {e}"
            return time.perf_counter() - t0, None

        try:
            with ThreadPoolExecutor(concurrency, thread_name_prefix=self.key) as pool:
                t0 = time.perf_counter()
                results = list(pool.map(timed, range(start, start + count)))
                seconds = time.perf_counter() - t0
        finally:
            for c in clients:
                c.close()
        self.latencies_ms.extend(t * 1000 for t, _ in results)
        return seconds, [e for _, e in results if e]

    def warm(self, count: int, concurrency: int) -> None:
        _, errors = self.batch(0, count, concurrency)
        self.latencies_ms.clear()
        for v in self.parts.values():
            v.clear()
        if errors:
            raise RuntimeError(f"{self.name}: warm-up failed: {errors[0]}")

    def measure(self, start: int, count: int, concurrency: int) -> None:
        seconds, errors = self.batch(start, count, concurrency)
        self.seconds += seconds
        self.done += count
        self.errors.extend(errors)

    def result(self) -> Result:
        if self.errors:
            print(
                f"{self.name}: {len(self.errors)} failed request(s), first: {self.errors[0]}",
                file=sys.stderr,
            )
        return Result(
            name=self.name,
            tree=self.key,
            requests=self.done,
            http_requests_each=self.http_requests_each,
            seconds=round(self.seconds, 3),
            per_second=round(self.done / self.seconds, 1) if self.seconds else 0.0,
            p50_ms=round(percentile(self.latencies_ms, 50), 1),
            p95_ms=round(percentile(self.latencies_ms, 95), 1),
            errors=len(self.errors),
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


def upload_materials(c: Any, auth: dict[str, str], materials: list[str]) -> list[str]:
    """One upload of PDF per material through POST /api/v1/attachments (an httpx client
    over HTTP, or a TestClient in process); their ids."""
    return [
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


def case_body(form: dict[str, Any], ids: list[str]) -> dict[str, Any]:
    """The JSON body of POST /api/v1/cases for the bench's matter with those uploads."""
    return {
        "matter_code": MATTER,
        "competent_jurisdiction": JURISDICTION,
        "competent_city": CITY,
        "mode": "online",
        "form_data": form,
        "consent": True,
        "attachment_ids": ids,
    }


# --- main ----------------------------------------------------------------------------


def reference_target(base: str) -> Target:
    body = {"matter_code": MATTER, "payload": {"applicant": "王芳", "city": CITY}}

    def insert(c: httpx.Client, _i: int) -> None:
        check(c.post("/rows", json=body), 201)

    return Target("reference", "reference: bare FastAPI INSERT", base, insert)


def tongban_target(tree: Tree, base: str, *, cold_token: bool) -> Target:
    """A resident's submission on the server of `tree`: log in, read the matter, then
    upload each required material and POST the case."""
    from tongban.demo import DEMO_PASSWORD

    token = check(
        httpx.post(
            f"{base}/api/v1/auth/token",
            timeout=REQUEST_TIMEOUT,
            data={"username": RESIDENT, "password": DEMO_PASSWORD},
        ),
        200,
    )
    auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
    if not cold_token:
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

    def upload(c: httpx.Client) -> list[str]:
        return upload_materials(c, auth, materials)

    def post_case(c: httpx.Client, ids: list[str]) -> None:
        check(
            c.post("/api/v1/cases", headers=auth, json=case_body(form, ids)),
            201,
        )

    def submit(c: httpx.Client, _i: int) -> None:
        t0 = time.perf_counter()
        ids = upload(c)
        t1 = time.perf_counter()
        post_case(c, ids)
        t2 = time.perf_counter()
        with parts_lock:
            parts["upload"].append((t1 - t0) * 1000)
            parts["case"].append((t2 - t1) * 1000)

    return Target(
        tree.label,
        f"{tree.title}: upload x{len(materials)} + POST /api/v1/cases",
        base,
        submit,
        http_requests_each=len(materials) + 1,
        parts=parts,
        split=(upload, post_case),
    )


def split_cpu(
    targets: list[Target], pids: dict[str, int], requests: int, rounds: int, concurrency: int
) -> dict[str, dict[str, float]]:
    """The server's CPU per submission for its uploads and for its POST apart: in each
    round every tongban target (in turns, order reversed every other round) takes
    `requests / rounds` submissions' uploads at `concurrency`, then POSTs a case for each
    set of uploads, the server's CPU read around each of the two batches."""
    cpu: dict[str, dict[str, float]] = {}
    done: dict[str, int] = {}
    tongban = [t for t in targets if t.split is not None]
    for r, count in enumerate(_before.split(requests, rounds)):
        for target in _before.round_order(tongban, r):
            spent = cpu.setdefault(target.key, {"upload": 0.0, "post_case": 0.0})
            for part, seconds in _split_once(target, pids, count, concurrency).items():
                spent[part] += seconds
            done[target.key] = done.get(target.key, 0) + count
    return {
        key: {part: round(v * 1000 / done[key], 2) for part, v in parts.items()}
        for key, parts in cpu.items()
        if done.get(key)
    }


def _split_once(
    target: Target, pids: dict[str, int], count: int, concurrency: int
) -> dict[str, float]:
    """`count` submissions' uploads, then their POSTs, on `target`: the server's CPU
    seconds for each of the two batches."""
    assert target.split is not None
    upload, post_case = target.split
    pid = pids[f"tongban-{target.key}"]
    uploaded: list[list[str]] = []
    lock = threading.Lock()

    def up(c: httpx.Client, _i: int) -> None:
        ids = upload(c)
        with lock:
            uploaded.append(ids)

    def post(c: httpx.Client, _i: int) -> None:
        with lock:
            ids = uploaded.pop()
        post_case(c, ids)

    spent: dict[str, float] = {}
    for part, one in (("upload", up), ("post_case", post)):
        c0 = cpu_seconds(pid)
        _, errors = Target(target.key, target.name, target.base, one).batch(0, count, concurrency)
        c1 = cpu_seconds(pid)
        if errors:
            raise RuntimeError(f"{target.name}: {part}: {errors[0]}")
        if c0 is not None and c1 is not None:
            spent[part] = c1 - c0
    return spent


def count_server(target: Target, paths: list[Path]) -> list[float | None]:
    """What the server's running counts in `paths` grew by per submission over COUNTED
    submissions one after the other (None for a count the server does not keep)."""
    time.sleep(0.5)
    first = [read_count(p) for p in paths]
    if all(f is None for f in first):
        return [None] * len(paths)
    client = httpx.Client(base_url=target.base, timeout=REQUEST_TIMEOUT)
    try:
        for i in range(COUNTED):
            target.one(client, 10_000_000 + i)
    finally:
        client.close()
    time.sleep(0.6)
    last = [read_count(p) for p in paths]
    return [
        None if a is None or b is None else round((b - a) / COUNTED, 1)
        for a, b in zip(first, last, strict=True)
    ]


def drive_in_process(database_url: str, count: int, warmup: int, upload_dir: str) -> None:
    """In this process (run as `--drive-in-process` with a tree's PYTHONPATH): the app
    built as `tongban serve` builds it, driven through a TestClient, `warmup` then
    `count` submissions one after the other; prints the process's CPU (all threads, the
    client's part included) per upload and per POST as JSON."""
    os.environ.update(
        {
            "TONGBAN_DATABASE_URL": database_url,
            "TONGBAN_EMBEDDED_WORKER": "false",
            "TONGBAN_UPLOAD_DIR": upload_dir,
            "TONGBAN_SECRET_KEY": "bench-secret-key",
        }
    )
    from fastapi.testclient import TestClient

    from tongban.config import Settings
    from tongban.contexts import build_node
    from tongban.demo import DEMO_PASSWORD
    from tongban.web.app import create_app

    app = create_app(build_node(Settings()), run_worker=False)
    with TestClient(app) as c:
        login = {"username": RESIDENT, "password": DEMO_PASSWORD}
        token = check(c.post("/api/v1/auth/token", data=login), 200).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        check(c.get("/api/v1/me", headers=auth), 200)
        matter = check(c.get(f"/api/v1/matters/{MATTER}", headers=auth), 200).json()
        materials = [m["code"] for m in matter["materials"] if m["required"]]
        form = sample_form(matter["form_schema"])
        spent = {"upload": 0.0, "post": 0.0}

        def one(measured: bool) -> None:
            t0 = time.process_time()
            ids = upload_materials(c, auth, materials)
            t1 = time.process_time()
            check(c.post("/api/v1/cases", headers=auth, json=case_body(form, ids)), 201)
            t2 = time.process_time()
            if measured:
                spent["upload"] += t1 - t0
                spent["post"] += t2 - t1

        for _ in range(warmup):
            one(False)
        for _ in range(count):
            one(True)
    print(json.dumps({k: round(v * 1000 / count, 3) for k, v in spent.items()}))


def in_process_pairs(
    trees: list[Tree], dbs: dict[str, str], pairs: int, count: int, upload_dir: Path
) -> dict[str, Any]:
    """Per tree, the CPU of an upload and of a POST in its own process (`drive_in_process`)
    on its own database, `pairs` times, the order of the trees alternating: no HTTP
    server, no event loop of a server, nothing else in the process, so what is left to
    move the figure is the machine."""
    out: dict[str, Any] = {t.label: {"upload": [], "post": []} for t in trees}
    for i in range(pairs):
        for tree in trees if i % 2 == 0 else list(reversed(trees)):
            argv = [sys.executable, str(THIS), "--drive-in-process", "--database-url"]
            argv += [dbs[tree.label], "--in-process-submissions", str(count)]
            argv += ["--upload-dir", str(upload_dir / f"in-process-{tree.label}")]
            r = subprocess.run(argv, env=tree.env(), capture_output=True, text=True, check=False)
            if r.returncode != 0:
                tail = "\n".join(r.stderr.strip().splitlines()[-5:])
                raise RuntimeError(f"{tree.title}: the in-process drive failed:\n{tail}")
            got = json.loads(r.stdout.strip().splitlines()[-1])
            for part in ("upload", "post"):
                out[tree.label][part].append(got[part])
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    trees = _before.trees()
    before: Tree | None = trees[0] if trees[0].label == "before" else None
    after = trees[-1]
    with ExitStack() as stack:
        tmpdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tongban-bench-")))
        dbs = {
            t.label: stack.enter_context(pg_database(args.pg_url, f"bench_{t.label}"))
            for t in trees
        }
        print(
            "preparing the databases (migrations, demo federation), each with its tree's code ...",
            flush=True,
        )
        pg_version = prepare_tree(after, dbs["after"])
        if before is not None:
            try:
                prepare_tree(before, dbs["before"])
            except RuntimeError as exc:
                print(f"before: unavailable ({exc}); measuring after only", flush=True)
                before = None
        create_reference_table(dbs["after"])

        ref_port = free_port()
        ref_argv = [
            sys.executable,
            str(THIS),
            "--serve-reference",
            "--port",
            str(ref_port),
            "--database-url",
            dbs["after"],
        ]
        pids: dict[str, int] = {}
        count_files: dict[str, Path] = {}
        targets = [
            reference_target(
                stack.enter_context(
                    server("reference", ref_argv, after.env(), ref_port, tmpdir, pids)
                )
            )
        ]
        for tree in [t for t in (before, after) if t is not None]:
            port = free_port()
            env = tree.env(
                {
                    **os.environ,
                    "TONGBAN_DATABASE_URL": dbs[tree.label],
                    "TONGBAN_EMBEDDED_WORKER": "false",
                    "TONGBAN_UPLOAD_DIR": str(tmpdir / f"uploads-{tree.label}"),
                    "TONGBAN_SECRET_KEY": "bench-secret-key",
                    # The server counts its SQL statements into this file (web/deps.py;
                    # a tree without the hook leaves it absent: "not measured").
                    "TONGBAN_BENCH_COUNT_SQL": str(tmpdir / f"sql-{tree.label}.txt"),
                }
            )
            count_files[tree.label] = tmpdir / f"sql-{tree.label}.txt"
            argv = [sys.executable, "-m", "tongban", "serve", "--host", "127.0.0.1"]
            argv += ["--port", str(port), "--no-worker"]
            try:
                base = stack.enter_context(
                    server(f"tongban-{tree.label}", argv, env, port, tmpdir, pids)
                )
                target = tongban_target(tree, base, cold_token=args.cold_token)
                print(f"{target.name}: {args.warmup} warm-up ...", flush=True)
                target.warm(args.warmup, args.concurrency)
            except (ServerFailed, RuntimeError) as exc:
                if tree is after:
                    raise
                print(f"before: unavailable ({exc}); measuring after only", flush=True)
                before = None
                continue
            targets.append(target)
        targets[0].warm(args.warmup, args.concurrency)

        rounds = _before.split(args.requests, args.rounds)
        print(
            f"measuring {args.requests} requests each in {len(rounds)} rounds, "
            f"{' / '.join(t.key for t in targets)} taking turns ...",
            flush=True,
        )
        start = args.warmup
        # The server's own CPU time over its measured rounds: a figure a loaded machine
        # disturbs far less than the rate (the clients and the other servers take turns).
        cpu: dict[str, float] = {}
        by_round: dict[str, list[float]] = {}
        for r, count in enumerate(rounds):
            for target in _before.round_order(targets, r):
                pid = pids["reference" if target.key == "reference" else f"tongban-{target.key}"]
                c0 = cpu_seconds(pid)
                target.measure(start, count, args.concurrency)
                c1 = cpu_seconds(pid)
                if c0 is not None and c1 is not None:
                    cpu[target.key] = cpu.get(target.key, 0.0) + c1 - c0
                    by_round.setdefault(target.key, []).append(round((c1 - c0) * 1000 / count, 2))
            start += count
        cpu_ms = {
            t.key: round(cpu[t.key] * 1000 / t.done, 2) for t in targets if t.key in cpu and t.done
        }
        # The phases below add submissions of their own: the timings stay the rounds'.
        kept = {
            t.key: (list(t.latencies_ms), {k: list(v) for k, v in t.parts.items()}) for t in targets
        }
        split = (
            split_cpu(targets, pids, args.split_requests, args.rounds, args.concurrency)
            if args.split_requests
            else {}
        )
        # Statements and flushes that wrote something (web/deps.py; a tree without the
        # flush count: None), over the same submissions.
        counted = {
            t.key: count_server(t, [count_files[t.key], Path(str(count_files[t.key]) + ".flushes")])
            for t in targets
            if t.key in count_files
        }
        statements = {k: v[0] for k, v in counted.items()}
        flushes = {k: v[1] for k, v in counted.items()}
        in_process = (
            in_process_pairs(
                [t for t in (before, after) if t is not None],
                dbs,
                args.in_process_pairs,
                args.in_process_submissions,
                tmpdir,
            )
            if args.in_process_pairs and before is not None
            else {}
        )
        # Memory: the after server's peak RSS once it has taken --rss-submissions in all.
        after_target = next(t for t in targets if t.key == "after")
        made = args.warmup + args.requests + COUNTED + args.split_requests
        if args.rss_submissions > made:
            print(f"after: {args.rss_submissions - made} more submissions for the peak RSS ...")
            after_target.batch(made, args.rss_submissions - made, args.concurrency)
        submitted = max(args.rss_submissions, made)
        rss = {
            key: peak_rss_mib(pids[name])
            for key, name in (("after", "tongban-after"), ("before", "tongban-before"))
            if name in pids
        }
        rss["reference"] = peak_rss_mib(pids["reference"])
        cases = {t.key: count_cases(dbs[t.key]) for t in targets if t.key != "reference"}
        for t in targets:
            t.latencies_ms, t.parts = kept[t.key]

    by_key = {t.key: t for t in targets}
    res = {key: t.result() for key, t in by_key.items()}
    ref = res["reference"]
    now, old = res["after"], res.get("before")

    def ratio(a: Result | None, b: Result | None) -> float | None:
        return round(a.per_second / b.per_second, 3) if a and b and b.per_second else None

    materials = by_key["after"].http_requests_each - 1
    return {
        "benchmark": "case submissions per second through the HTTP API on PostgreSQL, "
        "before and after issue 11's kernel work, in one run",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "trees": {
            "before": before.commit if before is not None else "unavailable",
            "after": after.commit,
        },
        "submission": f"{materials} upload(s) of the required materials "
        f"+ POST /api/v1/cases, matter {MATTER} "
        f"({JURISDICTION}/{CITY}) by {RESIDENT}; the upload counts in the cost",
        "reference": "bare FastAPI app, one sync POST endpoint, one INSERT of a small row, "
        "same engine settings (tongban.db.make_engine)",
        "servers": "uvicorn, 1 process each, 127.0.0.1, log level info; tongban with --no-worker",
        "postgresql": pg_version,
        "python": platform.python_version(),
        "load": {
            "requests": args.requests,
            "warmup": args.warmup,
            "concurrency": args.concurrency,
            "rounds": len(rounds),
        },
        "machine_load": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "results": [asdict(r) for r in (now, old, ref) if r is not None],
        "ratio_tongban_to_reference": ratio(now, ref),
        "ratio_before_to_reference": ratio(old, ref),
        "ratio_after_to_before": ratio(now, old),
        "before_after": [
            _before.comparison(
                "case submission (uploads + POST /api/v1/cases)",
                "submissions/s",
                old.per_second if old else None,
                now.per_second,
                tree=before,
                note=f"reference {ref.per_second}/s; after/reference {ratio(now, ref)}",
            )
        ],
        "parts_p50_ms": {
            t.key: {
                "uploads": round(percentile(t.parts["upload"], 50), 1),
                "post_case": round(percentile(t.parts["case"], 50), 1),
            }
            for t in targets
            if t.parts
        },
        "cases_in_database_after_run": cases,
        "server_cpu_ms_per_submission": cpu_ms,
        "server_cpu_ms_per_submission_by_round": by_round,
        "server_cpu_ms_per_submission_split": split,
        "server_cpu_split_over": f"{args.split_requests} submissions each, uploads and POSTs "
        "in batches of their own (split_cpu), outside the timed rounds",
        "sql_statements_per_submission": statements,
        "flushes_per_submission": flushes,
        "in_process_cpu_ms": in_process,
        "in_process_over": f"{args.in_process_submissions} submissions one after the other "
        "in a process of each tree's own (TestClient, no HTTP server), pairs in alternating "
        "order (in_process_pairs)",
        "sql_statements_counted_over": f"{COUNTED} submissions one after the other, counted "
        "by the server (TONGBAN_BENCH_COUNT_SQL)",
        "peak_rss_mib": rss,
        "peak_rss_after_submissions": submitted,
        "verdicts": verdicts(ratio(now, ref), statements.get("after"), rss.get("after"), submitted),
    }


#: Issue 14's aims for a submission: its rate against the bare INSERT of the same run,
#: and the SQL statements it sends.
AIM_RATIO = 0.25
AIM_STATEMENTS = 12.0


def verdicts(
    ratio: float | None, statements: float | None, rss: float | None, submitted: int
) -> list[str]:
    """One line per figure issue 14 asks for, with "met" / "not met" where it sets an aim."""

    def met(ok: bool) -> str:
        return "met" if ok else "not met"

    return [
        "issue 14, submission/bare INSERT (aim >= 0.25): "
        + ("not measured" if ratio is None else f"{ratio:.3f} {met(ratio >= AIM_RATIO)}"),
        "issue 14, SQL statements per submission (aim <= 12): "
        + (
            "not measured"
            if statements is None
            else f"{statements} {met(statements <= AIM_STATEMENTS)}"
        ),
        f"issue 14, peak RSS of tongban serve after {submitted} submissions (printed, no aim): "
        + ("not measured" if rss is None else f"{rss} MiB"),
    ]


def print_table(report: dict[str, Any]) -> None:
    rows = report["results"]
    head = f"{'name':<50} {'requests':>8} {'seconds':>8} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8}"
    print()
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['name']:<50} {r['requests']:>8} {r['seconds']:>8.2f} {r['per_second']:>8.1f}"
            f" {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f}"
        )
    print("-" * len(head))

    def shown(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    print(
        f"ratio after/before: {shown(report['ratio_after_to_before'])}; "
        f"after/reference: {shown(report['ratio_tongban_to_reference'])}; "
        f"before/reference: {shown(report['ratio_before_to_reference'])}"
    )
    print(f"trees: {report['trees']}")
    print(f"one submission = {report['submission']}")
    print(
        f"p50 of the parts of a submission (ms): {report['parts_p50_ms']}; "
        f"cases in the databases after the run: {report['cases_in_database_after_run']}"
    )
    print(
        f"SQL statements per submission (server-side, {report['sql_statements_counted_over']}): "
        + "; ".join(
            f"{k} {'not measured' if v is None else v}"
            for k, v in report["sql_statements_per_submission"].items()
        )
        + " (issue 14: 28 before its work, aim <= 12)"
    )
    inproc = report.get("in_process_cpu_ms") or {}
    if "before" in inproc and "after" in inproc:
        for part in ("post", "upload"):
            b, a = inproc["before"][part], inproc["after"][part]
            lower = sum(1 for x, y in zip(b, a, strict=True) if y < x)
            print(
                f"in-process CPU per {part}, ms ({report['in_process_over']}): "
                f"before {round(sum(b) / len(b), 2)}, after {round(sum(a) / len(a), 2)}; "
                f"after's lower in {lower} of {len(b)} pairs; pairs: "
                + ", ".join(f"{x} / {y}" for x, y in zip(b, a, strict=True))
            )
    print(
        "Session flushes that wrote something, per submission (the same submissions): "
        + "; ".join(
            f"{k} {'not measured' if v is None else v}"
            for k, v in report.get("flushes_per_submission", {}).items()
        )
    )
    print(
        "server CPU (user + system, /proc) per submission over the measured rounds, ms "
        "(reference: per request): "
        + "; ".join(f"{k} {v}" for k, v in report["server_cpu_ms_per_submission"].items())
    )
    by_round = report.get("server_cpu_ms_per_submission_by_round", {})
    if "before" in by_round and "after" in by_round:
        lower = sum(a < b for a, b in zip(by_round["after"], by_round["before"], strict=False))
        print(
            f"after's server CPU lower than before's in {lower} of {len(by_round['after'])} rounds"
        )
    if report.get("server_cpu_ms_per_submission_split"):
        print(
            "server CPU per submission, uploads / POST apart, ms ("
            + report["server_cpu_split_over"]
            + "): "
            + "; ".join(
                f"{k} {v['upload']} / {v['post_case']}"
                for k, v in report["server_cpu_ms_per_submission_split"].items()
            )
        )
    print(
        f"peak RSS (VmHWM, MiB) after {report['peak_rss_after_submissions']} submissions to "
        "the after server: " + "; ".join(f"{k} {v}" for k, v in report["peak_rss_mib"].items())
    )
    for line in report["verdicts"]:
        print(line)
    print(f"machine load (1/5/15 min): {report['machine_load']}")
    print(f"load: {report['load']}; PostgreSQL {report['postgresql']}; {report['servers']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument(
        "--pg-url",
        default=os.environ.get("TONGBAN_BENCH_PG_URL"),
        help="PostgreSQL server URL whose user may create databases",
    )
    p.add_argument("--requests", type=int, default=300, help="measured, for each server")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--rounds", type=int, default=4, help="turns taken by the servers")
    p.add_argument(
        "--quick", action="store_true", help="100 requests, 10 warm-up, 2 rounds, RSS after 500"
    )
    p.add_argument(
        "--rss-submissions",
        type=int,
        default=10_000,
        help="submissions the after server has taken when its peak RSS is read",
    )
    p.add_argument(
        "--split-requests",
        type=int,
        default=120,
        help="submissions whose uploads and POSTs are measured apart for the server's CPU",
    )
    p.add_argument(
        "--in-process-pairs",
        type=int,
        default=0,
        help="pairs of in-process drives (before, after) measuring an upload's and a POST's "
        "CPU without an HTTP server (0: none)",
    )
    p.add_argument("--in-process-submissions", type=int, default=200)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument(
        "--cold-token", action="store_true", help="start the load with a token never used before"
    )
    p.add_argument("--serve-reference", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--database-url", help=argparse.SUPPRESS)
    p.add_argument("--drive-in-process", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--upload-dir", help=argparse.SUPPRESS)
    if p.parse_known_args(argv)[0].quick:  # smaller defaults; counts given still win
        p.set_defaults(requests=100, warmup=10, rounds=2, rss_submissions=500)
    args, _unknown = p.parse_known_args(argv)  # make bench passes its extra arguments to all
    if args.serve_reference:
        serve_reference(args.database_url, args.port)
        return 0
    if args.prepare:
        print(prepare(args.database_url))
        return 0
    if args.drive_in_process:
        drive_in_process(args.database_url, args.in_process_submissions, 30, args.upload_dir)
        return 0
    if not args.pg_url:
        p.error("no PostgreSQL server: pass --pg-url or set TONGBAN_BENCH_PG_URL")
    if not (
        1 <= args.requests <= 100_000
        and 0 <= args.warmup <= 10_000
        and 1 <= args.concurrency <= 64
        and 1 <= args.rounds <= 100
        and 0 <= args.rss_submissions <= 100_000
        and 0 <= args.split_requests <= 100_000
        and 0 <= args.in_process_pairs <= 100
        and 1 <= args.in_process_submissions <= 100_000
    ):
        p.error("requests, warmup, concurrency or rounds out of bounds")
    report = run(args)
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"written to {args.out}")
    failed = sum(r["errors"] for r in report["results"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
