"""Signed messages per second delivered node to node on loopback, for the tree before
issue 11's kernel work and the working tree in the same run — the working tree twice:
in batches (issue 14, the default) and one message a request (as to a node of an
earlier release) — beside the same messages sent over the same HTTP client to a bare
endpoint: after/bare (issue 14's figure), after/one-by-one and after/before.

Full path (what the federation does for every message): a durable outbox row committed
on node A (one transaction per message, as the change that causes it would), then A's
dispatcher signs each one (RFC 9421, Ed25519 by default), POSTs it to node B's inbox —
batched: up to 100 messages a request, each signed on its own — B verifies each
(digest, known node, key, signature, freshness, type) and applies it idempotently (the
inbox row and the handler's writes; batched: all in one transaction, a savepoint each),
and A marks the rows delivered (batched: one UPDATE a batch). The message is an `exchange.ping` carrying a case snapshot
(about 1.6 KB), whose handler writes nothing beyond the inbox row: that is the cost of the
exchange itself. Further rows send real `case.forwarded` messages (fewer), whose handler
also creates the case copy, its events, its answer and the audit entries.

Bare path: the same bodies, unsigned, POSTed over the same kind of httpx client to a
FastAPI endpoint that parses the JSON and answers 200 — no signing, no persistence.

Node B runs under a statement counter (`--count-serve`: every SQL statement its engines
execute), so the table also gives the receiver's statements per applied
`case.forwarded` for each tree (issue 14: the handler's work per message). Each row also
gives CPU per message: node A's process while it writes and while it delivers (its
background audit sealer included), and node B's process while it receives.

Each tree (benchmarks/_before.py) — and the working tree once more, one by one
(`--no-single` leaves that out) — gets a pair of nodes of its own: node A in a worker
process (`--worker`, PYTHONPATH at the tree's src) that this script drives over a pipe,
node B as `tongban serve --node … --no-worker` of the same tree; the bare endpoint runs
as uvicorn and is driven from this process. The measured messages are split into rounds
in which before, after and bare take turns (the order reversed every other round), so a
change in the machine's load falls on all alike. With --pg-url every node gets a fresh
PostgreSQL database (dropped at the end), else SQLite files. Writes
var/bench/exchange.json. Everything stays on 127.0.0.1 and stops by itself.

    python benchmarks/bench_exchange.py [--pg-url URL] [--messages 1000] [--alg SM2]
        [--rounds 4] [--quick] [--no-single]
    python benchmarks/bench_exchange.py --seal-linger --pg-url URL [--messages 300]
        [--rounds 4]   # the outbox write alone, the audit sealer's linger on and off
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _before
from _before import Tree
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

THIS = Path(__file__).resolve()
ROOT = THIS.parent.parent
OUT = ROOT / "var" / "bench" / "exchange.json"
SENDER, RECEIVER = "node-310000", "node-320000"
PING, CASE = "exchange.ping", "case.forwarded"
#: Seconds node B may take to answer /healthz: on a loaded shared machine importing the
#: app alone took ~20 s, and 60 s (the default) was not always enough.
NODE_STARTUP = 300.0


def bare_app() -> Any:
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/exchange/v1/inbox")
    async def inbox(request: Request) -> JSONResponse:
        data = json.loads(await request.body())
        return JSONResponse({"id": data["id"], "status": "accepted"})

    return app


def snapshot(seq: int) -> dict[str, Any]:
    """A `case.forwarded` payload as a 上海 window would send it to a 江苏 authority."""
    day = datetime.now(UTC).strftime("%Y%m%d")
    now = datetime.now(UTC).isoformat()
    return {
        "number": f"310000{day}{seq:06d}",
        "id": str(uuid.uuid4()),
        "matter_code": "YRD-GJJ-0002",
        "matter_name": "住房公积金单位和个人缴存使用证明",
        "applicant_id": str(uuid.uuid4()),
        "applicant_type": "resident",
        "applicant_name": "张伟",
        "applicant_identifier": "310102198511123571",
        "applicant_phone": "13800000000",
        "channel": "window",
        "mode": "proxy",
        "receiving_jurisdiction": "310000",
        "receiving_city": "310000",
        "clerk_id": str(uuid.uuid4()),
        "identity_verified": True,
        "competent_jurisdiction": "320000",
        "competent_city": "320500",
        "authority_id": str(uuid.uuid4()),
        "authority_code": "320500-housing_fund",
        "authority_name": "苏州市住房公积金管理中心",
        "state": "submitted",
        "form_data": {
            "proof_purpose": "异地贷款",
            "account_number": "123456789012",
            "loan_city": "上海市",
        },
        "consent": True,
        "delivery_method": "post",
        "delivery_address": "上海市黄浦区人民大道200号 长三角一体化示范区政务服务中心 收",
        "time_limit_days": 1,
        "submitted_at": now,
        "parent_number": None,
        "attachments": [],
        "events": [
            {
                "id": str(uuid.uuid4()),
                "seq": 1,
                "action": "submit",
                "from_state": None,
                "to_state": "submitted",
                "actor_name": "上海市政务服务中心窗口",
                "actor_role": "clerk",
                "comment": "窗口代收，已核验身份与材料",
                "at": now,
            }
        ],
    }


# --- node A of one tree: a worker process driven over a pipe ------------------------


def worker(args: argparse.Namespace) -> int:
    """Node A of the tree this process imports (PYTHONPATH), with its node B in a server
    process of the same tree. Reads one JSON command a line on stdin and answers one
    JSON line: {"op": "full", "kind", "count", "offset"} -> seconds writing and
    delivering; {"op": "check"} -> counts; {"op": "quit"}."""
    # The protocol has stdout to itself; anything the code prints goes to stderr (the log).
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    from sqlalchemy import func, select, text

    from tongban.config import Settings
    from tongban.db import make_engine, session_factory
    from tongban.devserver import free_port, running
    from tongban.exchange import service as exchange
    from tongban.exchange.local import init_local
    from tongban.exchange.models import OutboxMessage

    workdir = Path(args.workdir)
    urls = [args.db_a, args.db_b] if args.db_a else None
    with ExitStack() as stack:
        port_a, port_b = free_port(), free_port()
        fed_path, planned = init_local(
            workdir / "fed", 2, port_a, alg=args.alg, database_urls=urls, demo=False
        )
        a, b = planned  # a: 310000+330000, b: 320000+340000
        b_url = f"http://127.0.0.1:{port_b}"
        # init_local numbers the ports from the first; B listens on its own free port.
        fed_path.write_text(fed_path.read_text().replace(b.base_url, b_url))
        env_b = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for line in (b.directory / ".env").read_text().splitlines():
            k, _, v = line.partition("=")
            env_b[k] = v
        # B runs under a statement counter (count_serve): the SQL statements it spends
        # per applied case.forwarded are read from its file around each round.
        counted = workdir / "b.statements"
        argv_b = [sys.executable, str(THIS), "--count-serve", str(counted), "serve", "--node", b.id]
        stack.enter_context(
            running(
                "node-b",
                argv_b + ["--port", str(port_b), "--no-worker"],
                env_b,
                port_b,
                workdir,
                timeout=NODE_STARTUP,
            )
        )
        settings = Settings(
            database_url=a.database_url,
            upload_dir=a.directory / "uploads",
            node_id=a.id,
            served_jurisdictions=",".join(a.jurisdictions),
            federation_file=fed_path,
            embedded_worker=False,
        )
        engine = make_engine(a.database_url)
        stack.callback(engine.dispose)
        try:
            from tongban.contexts import build_node
        except ImportError:  # the tree before the kernel: handlers loaded by the exchange
            factory = session_factory(engine)
            exchange.load_handlers()  # type: ignore[attr-defined]
        else:  # node A's sessions carry its settings, its contexts' handlers
            factory = build_node(settings, session_factory(engine)).session_factory
        remote = exchange.remote_for(settings)
        if args.batch is not None and remote is not None:
            remote.batch = args.batch  # 1: one message a request (the cached Remote)

        def b_state() -> tuple[int, float]:
            """B's statements and CPU seconds so far, once its count has settled (its file
            is rewritten every 50 ms)."""
            last, same, cpu = -1, 0, 0.0
            while same < 3:
                time.sleep(0.05)
                try:
                    fields = counted.read_text().split()
                    now, cpu = int(fields[0]), float(fields[1])
                except (OSError, ValueError, IndexError):
                    now = 0
                same = same + 1 if now == last else 0
                last = now
            return last, cpu

        # Trees that seal the audit chain in a background thread (issue 14, session 8):
        # the seals the run asked for count in its time.
        try:
            from tongban.audit import hook
        except ImportError:  # a tree before the audit hook
            drain = None
        else:
            drain = getattr(hook, "drain", None)

        def full(kind: str, count: int, offset: int) -> dict[str, float]:
            before_n, before_cpu = b_state()
            c0 = time.process_time()
            t0 = time.perf_counter()
            for i in range(count):
                with factory() as s:
                    case = snapshot(offset + i)
                    payload = {"note": "bench", "case": case} if kind == PING else case
                    exchange.send(s, kind, "310000", "320000", payload)
                    s.commit()
            t1 = time.perf_counter()
            c1 = time.process_time()
            delivered = 0
            for _ in range(count * 2):
                delivered += exchange.deliver_due(factory, settings, limit=500)
                if delivered >= count:
                    break
            if drain is not None:  # the audit seals still under way in the background
                drain(60)
            t2 = time.perf_counter()
            c2 = time.process_time()
            if delivered != count:
                # What became of the others (status, attempts, the last error), so that a
                # run that fails says why (session 12 saw 31 of 62 once in five runs).
                with factory() as s:
                    left = s.execute(
                        select(
                            OutboxMessage.status,
                            OutboxMessage.attempts,
                            OutboxMessage.last_error,
                            func.count(),
                        )
                        .where(OutboxMessage.status != "delivered", OutboxMessage.type == kind)
                        .group_by(
                            OutboxMessage.status, OutboxMessage.attempts, OutboxMessage.last_error
                        )
                    ).all()
                raise RuntimeError(f"delivered {delivered} of {count}; not delivered: {left}")
            after_n, after_cpu = b_state()
            out = {
                "write_s": t1 - t0,
                "deliver_s": t2 - t1,
                # CPU seconds: node A's process writing and delivering (its background
                # sealer included), node B's process while it received them
                "a_write_cpu": c1 - c0,
                "a_deliver_cpu": c2 - c1,
                "b_cpu": after_cpu - before_cpu,
            }
            if kind == CASE:  # (B's statements for the receipts' delivery back: none)
                out["statements"] = after_n - before_n
            return out

        def check() -> dict[str, Any]:
            with factory() as s:
                dead = s.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.status != "delivered")
                )
            b_engine = make_engine(b.database_url)
            with b_engine.connect() as c:
                inbox_b = int(c.execute(text("SELECT count(*) FROM inbox_message")).scalar_one())
                cases_b = int(c.execute(text("SELECT count(*) FROM service_case")).scalar_one())
            b_engine.dispose()
            return {
                "undelivered_on_sender": int(dead or 0),
                "inbox_on_receiver": inbox_b,
                "cases_on_receiver": cases_b,
            }

        batch = getattr(exchange.remote_for(settings), "batch", 1)  # 1 before issue 14
        ready = {"ready": True, "concurrency": settings.exchange_concurrency, "batch": batch}
        proto.write(json.dumps(ready) + "\n")
        for line in sys.stdin:
            cmd = json.loads(line)
            if cmd["op"] == "quit":
                break
            try:
                if cmd["op"] == "full":
                    out: dict[str, Any] = full(cmd["kind"], cmd["count"], cmd["offset"])
                else:
                    out = check()
            except Exception as exc:  # noqa: BLE001 - sent back, the parent reports it
                out = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            proto.write(json.dumps(out) + "\n")
    return 0


class Pair:
    """One tree's pair of nodes: node A in a worker process, driven from here. `batch`
    overrides the sender's batch size (1: one message a request); `name` is how the
    tables call it."""

    def __init__(
        self,
        tree: Tree,
        workdir: Path,
        alg: str,
        urls: list[str] | None,
        *,
        name: str | None = None,
        batch: int | None = None,
    ) -> None:
        self.tree = tree
        self.name = name or tree.title
        workdir.mkdir(parents=True)
        self.log = workdir / "worker.log"
        argv = [sys.executable, str(THIS), "--worker", "--workdir", str(workdir), "--alg", alg]
        if urls:
            argv += ["--db-a", urls[0], "--db-b", urls[1]]
        if batch is not None:
            argv += ["--batch", str(batch)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                argv,
                env=tree.env({**os.environ, "PYTHONUNBUFFERED": "1"}),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                cwd=workdir,
            )
        self.offset = 0
        self.totals: dict[str, dict[str, float]] = {
            k: {
                "messages": 0,
                "write_s": 0.0,
                "deliver_s": 0.0,
                "statements": 0,
                "a_write_cpu": 0.0,
                "a_deliver_cpu": 0.0,
                "b_cpu": 0.0,
            }
            for k in (PING, CASE)
        }
        try:
            ready = self._answer()
            self.concurrency, self.batch = ready["concurrency"], ready.get("batch", 1)
        except Exception:
            self.close()
            raise

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(60)  # (its exit may wait for node B to stop)
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-8:])
            raise RuntimeError(f"{self.name}: node A exited ({self.proc.returncode})\n{tail}")
        out: dict[str, Any] = json.loads(line)
        if "error" in out:
            raise RuntimeError(f"{self.name}: {out['error']}")
        return out

    def call(self, op: str, **kw: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def full(self, kind: str, count: int, *, measured: bool = True) -> None:
        """`count` messages of `kind` written on A, then delivered to B."""
        out = self.call("full", kind=kind, count=count, offset=self.offset)
        self.offset += count
        if measured:
            t = self.totals[kind]
            t["messages"] += count
            t["write_s"] += out["write_s"]
            t["deliver_s"] += out["deliver_s"]
            t["statements"] += out.get("statements", 0)
            for k in ("a_write_cpu", "a_deliver_cpu", "b_cpu"):
                t[k] += out.get(k, 0.0)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def bare_bodies(count: int, offset: int, node: str) -> list[bytes]:
    return [
        json.dumps(
            {
                "id": str(uuid.uuid4()),
                "type": CASE,
                "source_node": node,
                "source_jurisdiction": "310000",
                "target_jurisdiction": "320000",
                "created_at": datetime.now(UTC).isoformat(),
                "payload": snapshot(offset + i),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        for i in range(count)
    ]


def row(name: str, totals: dict[str, float], note: str) -> dict[str, Any]:
    n, w, d = int(totals["messages"]), totals["write_s"], totals["deliver_s"]

    def ms(key: str) -> float:
        return round(1000 * totals[key] / n, 3) if n else 0.0

    return {
        "name": name,
        "messages": n,
        "seconds": round(w + d, 3),
        "per_second": round(n / (w + d), 1) if w + d else 0.0,
        "cpu_ms_per_message": {
            "sender_write": ms("a_write_cpu"),
            "sender_deliver": ms("a_deliver_cpu"),
            "receiver": ms("b_cpu"),
        },
        "note": f"{note}: outbox writes {w:.2f} s ({1000 * w / n if n else 0:.2f} ms a message)"
        f" + delivery {d:.2f} s ({n / d if d else 0:.0f} msg/s delivering); CPU a message:"
        f" sender writing {ms('a_write_cpu'):.2f} ms, delivering {ms('a_deliver_cpu'):.2f} ms,"
        f" receiver {ms('b_cpu'):.2f} ms",
    }


#: The pairs by role: the tree before issue 11, the working tree one message a request,
#: the working tree in batches (the default path).
BEFORE, SINGLE, AFTER = "before", "single", "after"


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tongban.devserver import free_port, pg_database, running
    from tongban.exchange.transport import HttpTransport

    plan: list[tuple[str, Tree, int | None]] = []
    for tree in _before.trees():
        if tree.label == "after" and not args.no_single:
            plan.append((SINGLE, tree, 1))
        plan.append((tree.label, tree, None))
    n, warm, nc = args.messages, args.warmup, args.case_messages
    pairs: dict[str, Pair] = {}
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-ex-")))
        print("preparing a pair of nodes for each tree (databases, keys) ...", flush=True)
        for role, tree, batch in plan:
            urls = None
            if args.pg_url:
                urls = [
                    stack.enter_context(pg_database(args.pg_url, f"{t}_{role}")) for t in ("a", "b")
                ]
            name = {SINGLE: "after, one by one", AFTER: "after, batched"}.get(role, tree.title)
            try:
                pair = Pair(tree, workdir / role, args.alg, urls, name=name, batch=batch)
            except RuntimeError as exc:
                if role != BEFORE:
                    raise
                print(f"before: unavailable ({exc}); measuring after only", flush=True)
                continue
            stack.callback(pair.close)
            pairs[role] = pair
        bare_port = free_port()
        bare_url = f"http://127.0.0.1:{bare_port}/exchange/v1/inbox"
        bare_argv = [sys.executable, str(THIS), "--serve-bare", "--port", str(bare_port)]
        stack.enter_context(running("bare", bare_argv, {**os.environ}, bare_port, workdir))
        transport = HttpTransport(10.0)
        stack.callback(transport.close)
        bare_total = {"messages": 0, "seconds": 0.0}

        def bare(count: int, offset: int, *, measured: bool = True) -> None:
            bodies = bare_bodies(count, offset, SENDER)
            t0 = time.perf_counter()
            for body in bodies:
                r = transport.client.post(
                    bare_url, content=body, headers={"Content-Type": "application/json"}
                )
                if r.status_code != 200:
                    raise RuntimeError(r.text)
            if measured:
                bare_total["messages"] += count
                bare_total["seconds"] += time.perf_counter() - t0

        print(f"warm-up: {warm} pings and {min(warm, 50)} case.forwarded each ...", flush=True)
        for role, pair in list(pairs.items()):
            try:
                pair.full(PING, warm, measured=False)
                pair.full(CASE, min(warm, 50), measured=False)
            except RuntimeError as exc:
                if role != BEFORE:
                    raise
                print(f"before: unavailable ({exc}); measuring after only", flush=True)
                del pairs[role]
        bare(warm, 0, measured=False)

        turns: list[Pair | None] = [*pairs.values(), None]  # None: the bare endpoint
        names = " / ".join(p.name if p else "bare" for p in turns)
        print(f"{n} pings each in rounds, {names} taking turns ...", flush=True)
        offset = warm
        for r, count in enumerate(_before.split(n, args.rounds)):
            for turn in _before.round_order(turns, r):
                if turn is None:
                    bare(count, offset)
                else:
                    turn.full(PING, count)
            offset += count
        print(f"{nc} case.forwarded each in rounds ...", flush=True)
        for r, count in enumerate(_before.split(nc, args.rounds)):
            for pair in _before.round_order(list(pairs.values()), r):
                pair.full(CASE, count)
        checks = {role: p.call("check") for role, p in pairs.items()}
        concurrency = pairs[AFTER].concurrency
        batch_size = pairs[AFTER].batch
        body_bytes = len(json.dumps(snapshot(0), ensure_ascii=False).encode())
    # (the pairs are closed and the databases dropped here)

    order = [r for r in (AFTER, SINGLE, BEFORE) if r in pairs]
    results = [
        row(
            f"{pairs[r].name}: signed + durable + idempotent ({args.alg})",
            pairs[r].totals[PING],
            PING,
        )
        for r in order
    ]
    results.append(
        {
            "name": "bare: unsigned, no persistence",
            "messages": bare_total["messages"],
            "seconds": round(bare_total["seconds"], 3),
            "per_second": round(bare_total["messages"] / bare_total["seconds"], 1),
            "note": "same bodies, same httpx client, JSON parse + 200",
        }
    )
    results += [
        row(
            f"{pairs[r].name}: case.forwarded applied (case copy made)",
            pairs[r].totals[CASE],
            "receiver creates the case copy, events, answer, audit entries",
        )
        for r in order
    ]

    def rate(role: str, kind: str) -> float | None:
        p = pairs.get(role)
        if p is None:
            return None
        t = p.totals[kind]
        return round(t["messages"] / (t["write_s"] + t["deliver_s"]), 1)

    def delivering(role: str, kind: str) -> float | None:
        p = pairs.get(role)
        if p is None or not p.totals[kind]["deliver_s"]:
            return None
        return round(p.totals[kind]["messages"] / p.totals[kind]["deliver_s"], 1)

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a is not None and b else None

    def statements(role: str) -> float | None:
        p = pairs.get(role)
        if p is None or not p.totals[CASE]["messages"]:
            return None
        return round(p.totals[CASE]["statements"] / p.totals[CASE]["messages"], 1)

    bare_ps = round(bare_total["messages"] / bare_total["seconds"], 1)
    before = pairs.get(BEFORE)
    before_tree = before.tree if before is not None else None
    return {
        "when": datetime.now(UTC).isoformat(),
        "trees": {
            "before": before_tree.commit if before_tree is not None else "unavailable",
            "after": pairs[AFTER].tree.commit,
        },
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "machine_load": {
            "start": load_before,
            "end": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
        "database": "PostgreSQL (two databases a pair)"
        if args.pg_url
        else "SQLite (two files a pair)",
        "payload_bytes": body_bytes,
        "concurrency": concurrency,
        "batch": batch_size,
        "warmup": warm,
        "rounds": len(_before.split(n, args.rounds)),
        "results": results,
        "bare_per_second": bare_ps,
        "per_second": {
            role: {"ping": rate(role, PING), "case_forwarded": rate(role, CASE)} for role in order
        },
        "delivering_per_second": {
            role: {"ping": delivering(role, PING), "case_forwarded": delivering(role, CASE)}
            for role in order
        },
        # Issue 14's figures: the batched path over the bare inbox (aim >= 0.25), and
        # case.forwarded applied per second (aim >= 150).
        # SQL statements the receiver spends per applied case.forwarded (its whole
        # process: the apply, the audit sealing, the cache listener's none).
        "case_statements_per_message": {role: statements(role) for role in order},
        "ratio_full_to_bare": ratio(rate(AFTER, PING), bare_ps),
        "aims": {
            "ratio": ratio(rate(AFTER, PING), bare_ps),
            "ratio_met": (ratio(rate(AFTER, PING), bare_ps) or 0.0) >= 0.25,
            "case_delivering": delivering(AFTER, CASE),
            "case_end_to_end": rate(AFTER, CASE),
            "case_met": (delivering(AFTER, CASE) or 0.0) >= 150,
        },
        "ratio_single_full_to_bare": ratio(rate(SINGLE, PING), bare_ps),
        "ratio_before_full_to_bare": ratio(rate(BEFORE, PING), bare_ps),
        "ratio_batched_to_single": ratio(rate(AFTER, PING), rate(SINGLE, PING)),
        "ratio_batched_to_single_case": ratio(rate(AFTER, CASE), rate(SINGLE, CASE)),
        "ratio_after_to_before": ratio(rate(AFTER, PING), rate(BEFORE, PING)),
        "ratio_after_to_before_case": ratio(rate(AFTER, CASE), rate(BEFORE, CASE)),
        "before_after": [
            _before.comparison(
                "exchange delivery: signed ping, outbox to inbox",
                "msg/s",
                rate(BEFORE, PING),
                rate(AFTER, PING) or 0.0,
                tree=before_tree,
                note=f"bare {bare_ps}/s; after/bare {ratio(rate(AFTER, PING), bare_ps)}",
            ),
            _before.comparison(
                "exchange delivery: case.forwarded applied",
                "msg/s",
                rate(BEFORE, CASE),
                rate(AFTER, CASE) or 0.0,
                tree=before_tree,
            ),
        ],
        "check": checks,
    }


def print_table(report: dict[str, Any]) -> None:
    head = f"{'path':<64} {'messages':>8} {'seconds':>8} {'msg/s':>8}"
    print()
    print(head)
    print("-" * len(head))
    for r in report["results"]:
        print(f"{r['name']:<64} {r['messages']:>8} {r['seconds']:>8.2f} {r['per_second']:>8.1f}")
    print("-" * len(head))

    def shown(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    print(
        f"full/bare (ping): batched {shown(report['ratio_full_to_bare'])}, "
        f"one by one {shown(report['ratio_single_full_to_bare'])}, "
        f"before {shown(report['ratio_before_full_to_bare'])}"
    )
    print(
        f"batched/one by one: {shown(report['ratio_batched_to_single'])} (ping), "
        f"{shown(report['ratio_batched_to_single_case'])} (case.forwarded); "
        f"after/before: {shown(report['ratio_after_to_before'])} (ping), "
        f"{shown(report['ratio_after_to_before_case'])} (case.forwarded)"
    )
    per = report.get("case_statements_per_message", {})
    print(
        "receiver SQL statements per case.forwarded: "
        + ", ".join(f"{role} {'-' if v is None else v}" for role, v in per.items())
    )
    for r in report["results"]:
        print(f"  {r['name']}: {r['note']}")
    aims = report["aims"]
    print(
        f"issue 14: batched end to end / bare {shown(aims['ratio'])} (aim >= 0.25): "
        f"{'met' if aims['ratio_met'] else 'not met'}; case.forwarded batched "
        f"{aims['case_delivering']} /s delivering, {aims['case_end_to_end']} /s end to end "
        f"(aim >= 150 /s delivering): {'met' if aims['case_met'] else 'not met'}"
    )
    print(f"trees: {report['trees']}")
    load = report["machine_load"]
    print(
        f"{report['database']}; TONGBAN_EXCHANGE_CONCURRENCY={report['concurrency']}; "
        f"batch {report['batch']}; payload {report['payload_bytes']} bytes; "
        f"warm-up {report['warmup']}; {report['rounds']} rounds; {report['machine']}; "
        f"load average at start {load['start']}, at end {load['end']}; check {report['check']}"
    )


def count_serve(path: Path, argv: list[str]) -> int:
    """Run `tongban <argv>` (node B's server) counting every SQL statement its engines
    execute; the count and the process's CPU seconds are written to `path` every 50 ms."""
    import runpy
    import threading

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    n = [0]

    def count(*_a: Any) -> None:
        n[0] += 1

    event.listen(Engine, "before_cursor_execute", count)

    def dump() -> None:
        # "<statements> <CPU seconds of this process>", every 50 ms
        while True:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(f"{n[0]} {time.process_time():.4f}")
            os.replace(tmp, path)
            time.sleep(0.05)

    threading.Thread(target=dump, daemon=True, name="count-serve").start()
    sys.argv = ["tongban", *argv]
    runpy.run_module("tongban", run_name="__main__", alter_sys=True)
    return 0


def seal_linger(args: argparse.Namespace) -> int:
    """`--seal-linger`: the outbox write alone, in this process, with the working tree's
    background sealer gathering wakes (audit.sealer.LINGER) and without (0), taking turns
    (the order reversed every other pair) on one fresh PostgreSQL database: wall time,
    process CPU and the writer thread's CPU a write, and seals a commit (issue 14,
    session 12). One message a transaction, as node A writes them in the full bench."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from tongban.audit import hook, sealer
    from tongban.config import Settings
    from tongban.contexts import build_node
    from tongban.db import make_engine, session_factory
    from tongban.exchange import service as exchange
    from tongban.kernel import sidepool
    from tongban.migrate import upgrade

    if not args.pg_url:
        print("--seal-linger needs --pg-url (the background seal is PostgreSQL's)")
        return 2
    linger = sealer.LINGER
    name = f"tongban_bench_seal_{uuid.uuid4().hex[:8]}"
    base = make_url(args.pg_url)
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(drivername="postgresql+psycopg", database=name)
    try:
        upgrade(url.render_as_string(hide_password=False))
        engine = make_engine(url.render_as_string(hide_password=False))
        settings = Settings(database_url=url.render_as_string(hide_password=False))
        factory = build_node(settings, session_factory(engine)).session_factory
        seals = [0]
        real_seal = hook.seal

        def counted(*a: Any, **kw: Any) -> int:
            seals[0] += 1
            return int(real_seal(*a, **kw))

        hook.seal = counted
        n = args.messages

        def one(value: float, offset: int) -> dict[str, float]:
            hook.drain(60)
            sealer.LINGER = value
            sealer._sealers.clear()  # a new sealer takes the linger
            s0, c0, w0, t0 = seals[0], time.process_time(), time.thread_time(), time.perf_counter()
            for i in range(n):
                with factory() as s:
                    payload = {"note": "bench", "case": snapshot(offset + i)}
                    exchange.send(s, PING, "310000", "320000", payload)
                    s.commit()
            t1, c1, w1 = time.perf_counter(), time.process_time(), time.thread_time()
            return {
                "linger_ms": value * 1e3,
                "wall_ms": (t1 - t0) / n * 1e3,
                "cpu_ms": (c1 - c0) / n * 1e3,
                "writer_cpu_ms": (w1 - w0) / n * 1e3,
                "seals_a_commit": (seals[0] - s0) / n,
                "load": os.getloadavg()[0],
            }

        one(0.0, 0), one(linger, 0)  # warm-up
        rows: list[dict[str, float]] = []
        for pair in range(args.rounds):
            for value in (0.0, linger) if pair % 2 == 0 else (linger, 0.0):
                rows.append(one(value, (len(rows) + 1) * n))
                print(json.dumps({k: round(v, 3) for k, v in rows[-1].items()}), flush=True)
        hook.drain(60)
        with engine.connect() as c:
            left = int(c.execute(text("SELECT count(*) FROM audit_pending")).scalar_one())
        engine.dispose()
        for value in (0.0, linger):
            mine = [r for r in rows if r["linger_ms"] == value * 1e3]
            print(
                f"linger {value * 1e3:.0f} ms: "
                + ", ".join(
                    f"{k} {min(r[k] for r in mine):.3f}-{max(r[k] for r in mine):.3f}"
                    for k in ("wall_ms", "cpu_ms", "writer_cpu_ms", "seals_a_commit")
                )
            )
        print(f"{args.rounds} pairs of {n} writes; staged rows left after a drain: {left}")
        return 0 if left == 0 else 1
    finally:
        sealer.LINGER = linger
        sidepool.forget()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    if raw[:1] == ["--count-serve"]:
        return count_serve(Path(raw[1]), raw[2:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--pg-url", default=os.environ.get("TONGBAN_BENCH_PG_URL"))
    p.add_argument("--messages", type=int, default=1000, help="pings measured, for each tree")
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--case-messages", type=int, default=250)
    p.add_argument("--rounds", type=int, default=4, help="turns taken by before, after, bare")
    p.add_argument(
        "--quick", action="store_true", help="300 pings, 80 case.forwarded, 40 warm-up, 2 rounds"
    )
    p.add_argument("--alg", choices=["EdDSA", "SM2"], default="EdDSA")
    p.add_argument("--no-single", action="store_true", help="leave out the working tree one by one")
    p.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    p.add_argument("--db-a", help=argparse.SUPPRESS)
    p.add_argument("--db-b", help=argparse.SUPPRESS)
    p.add_argument(
        "--seal-linger",
        action="store_true",
        help="only the outbox write in this process, the audit sealer's linger on and off "
        "(--messages writes a turn, --rounds pairs; needs --pg-url)",
    )
    if p.parse_known_args(argv)[0].quick:  # smaller defaults; counts given still win
        p.set_defaults(messages=300, case_messages=80, warmup=40, rounds=2)
    args, _unknown = p.parse_known_args(argv)  # make bench passes its extra arguments to all
    if args.serve_bare:
        import uvicorn

        uvicorn.run(bare_app(), host="127.0.0.1", port=args.port, log_level="info")
        return 0
    if args.worker:
        return worker(args)
    if not (
        1 <= args.messages <= 100_000
        and 0 <= args.warmup <= 10_000
        and 1 <= args.case_messages <= 100_000
        and 1 <= args.rounds <= 100
    ):
        p.error("messages, warmup or rounds out of bounds")
    if args.seal_linger:
        return seal_linger(args)
    report = run(args)
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"written to {args.out}")
    undelivered = sum(c["undelivered_on_sender"] for c in report["check"].values())
    return 0 if undelivered == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
