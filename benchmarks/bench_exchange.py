"""Signed messages per second delivered node to node on loopback, beside the same
messages sent over the same HTTP client to a bare endpoint: the ratio is the figure.

Full path (what the federation does for every message): a durable outbox row committed
on node A (one transaction per message, as the change that causes it would), then A's
dispatcher signs each one (RFC 9421, Ed25519 by default), POSTs it to node B's inbox, B
verifies it (digest, known node, key, signature, freshness, type) and applies it
idempotently inside one transaction (the inbox row and the handler's writes), and A
marks the row delivered. The message is an `exchange.ping` carrying a case snapshot
(about 1.6 KB), whose handler writes nothing beyond the inbox row: that is the cost of the
exchange itself. A third row sends real `case.forwarded` messages (fewer), whose handler
also creates the case copy, its events, its answer and the audit entries.

Bare path: the same bodies, unsigned, POSTed over the same kind of httpx client to a
FastAPI endpoint that parses the JSON and answers 200 — no signing, no persistence.

Node B runs as `tongban serve --node … --no-worker` and the bare endpoint as uvicorn,
each in its own process on 127.0.0.1; node A's dispatcher runs in this process. With
--pg-url both nodes get a fresh PostgreSQL database (dropped at the end), else SQLite
files. Writes var/bench/exchange.json. Everything stays on 127.0.0.1 and stops by itself.

    python benchmarks/bench_exchange.py [--pg-url URL] [--messages 2000] [--alg SM2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tongban.devserver import free_port, pg_database, running

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench" / "exchange.json"
SENDER, RECEIVER = "node-310000", "node-320000"


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


def run(args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import func, select, text

    from tongban.config import Settings
    from tongban.contexts import build_node
    from tongban.db import make_engine, session_factory
    from tongban.exchange import service as exchange
    from tongban.exchange.local import init_local
    from tongban.exchange.models import OutboxMessage
    from tongban.exchange.transport import HttpTransport

    n, warm = args.messages, args.warmup
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-ex-")))
        urls = None
        if args.pg_url:
            urls = [stack.enter_context(pg_database(args.pg_url, t)) for t in ("a", "b")]
        port_a, port_b = free_port(), free_port()
        fed_path, planned = init_local(
            workdir / "fed", 2, port_a, alg=args.alg, database_urls=urls, demo=False
        )
        a, b = planned  # a: 310000+330000, b: 320000+340000
        b_url = f"http://127.0.0.1:{port_b}"
        # init_local numbers the ports from the first; B listens on its own free port.
        fed_text = fed_path.read_text().replace(b.base_url, b_url)
        fed_path.write_text(fed_text)
        env_b = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for line in (b.directory / ".env").read_text().splitlines():
            k, _, v = line.partition("=")
            env_b[k] = v
        stack.enter_context(
            running(
                "node-b",
                [sys.executable, "-m", "tongban", "serve", "--node", b.id, "--port", str(port_b)]
                + ["--no-worker"],
                env_b,
                port_b,
                workdir,
            )
        )
        bare_port = free_port()
        bare_url = f"http://127.0.0.1:{bare_port}"
        stack.enter_context(
            running(
                "bare",
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--serve-bare",
                    "--port",
                    str(bare_port),
                ],
                {**os.environ},
                bare_port,
                workdir,
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
        # Node A in this process: its sessions carry its settings, its contexts' handlers.
        factory = build_node(settings, session_factory(engine)).session_factory

        def full(count: int, offset: int, kind: str) -> dict[str, float]:
            t0 = time.perf_counter()
            for i in range(count):
                with factory() as s:
                    if kind == "ping":
                        payload = {"note": "bench", "case": snapshot(offset + i)}
                    else:
                        payload = snapshot(offset + i)
                    exchange.send(s, kind, "310000", "320000", payload)
                    s.commit()
            t1 = time.perf_counter()
            delivered = 0
            for _ in range(count * 2):
                delivered += exchange.deliver_due(factory, settings, limit=500)
                if delivered >= count:
                    break
            t2 = time.perf_counter()
            if delivered != count:
                raise RuntimeError(f"delivered {delivered} of {count}")
            return {"write_s": t1 - t0, "deliver_s": t2 - t1}

        transport = HttpTransport(settings.exchange_timeout)

        def bare(count: int, offset: int) -> float:
            bodies = []
            for i in range(count):
                bodies.append(
                    json.dumps(
                        {
                            "id": str(uuid.uuid4()),
                            "type": "case.forwarded",
                            "source_node": a.id,
                            "source_jurisdiction": "310000",
                            "target_jurisdiction": "320000",
                            "created_at": datetime.now(UTC).isoformat(),
                            "payload": snapshot(offset + i),
                        },
                        ensure_ascii=False,
                        separators=(",", ":"),
                    ).encode()
                )
            t0 = time.perf_counter()
            for body in bodies:
                r = transport.client.post(
                    f"{bare_url}/exchange/v1/inbox",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
                if r.status_code != 200:
                    raise RuntimeError(r.text)
            return time.perf_counter() - t0

        full(warm, 0, "exchange.ping")
        full(min(warm, 50), 10 * n, "case.forwarded")
        bare(warm, 0)
        f = full(n, warm, "exchange.ping")
        bare_s = bare(n, warm)
        nc = args.case_messages
        fc = full(nc, 20 * n, "case.forwarded")
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
        engine.dispose()
        transport.close()
        body_bytes = len(json.dumps(snapshot(0), ensure_ascii=False).encode())
    full_total = f["write_s"] + f["deliver_s"]
    case_total = fc["write_s"] + fc["deliver_s"]
    results = [
        {
            "name": f"signed + durable + idempotent ({args.alg})",
            "messages": n,
            "seconds": round(full_total, 3),
            "per_second": round(n / full_total, 1),
            "note": f"exchange.ping carrying a case snapshot: outbox writes {f['write_s']:.2f} s"
            f" + delivery {f['deliver_s']:.2f} s ({n / f['deliver_s']:.0f} msg/s delivering)",
        },
        {
            "name": "bare: unsigned, no persistence",
            "messages": n,
            "seconds": round(bare_s, 3),
            "per_second": round(n / bare_s, 1),
            "note": "same bodies, same httpx client, JSON parse + 200",
        },
        {
            "name": "same, case.forwarded applied (case copy made)",
            "messages": nc,
            "seconds": round(case_total, 3),
            "per_second": round(nc / case_total, 1),
            "note": f"receiver creates the case copy, events, answer, audit entries: outbox "
            f"{fc['write_s']:.2f} s + delivery {fc['deliver_s']:.2f} s",
        },
    ]
    return {
        "when": datetime.now(UTC).isoformat(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "database": "PostgreSQL (two databases)" if args.pg_url else "SQLite (two files)",
        "payload_bytes": body_bytes,
        "concurrency": settings.exchange_concurrency,
        "warmup": warm,
        "results": results,
        "ratio_full_to_bare": round(results[0]["per_second"] / results[1]["per_second"], 3),
        "check": {
            "undelivered_on_sender": dead,
            "inbox_on_receiver": inbox_b,
            "cases_on_receiver": cases_b,
        },
    }


def print_table(report: dict[str, Any]) -> None:
    head = f"{'path':<44} {'messages':>8} {'seconds':>8} {'msg/s':>8}"
    print()
    print(head)
    print("-" * len(head))
    for r in report["results"]:
        print(f"{r['name']:<44} {r['messages']:>8} {r['seconds']:>8.2f} {r['per_second']:>8.1f}")
    print("-" * len(head))
    print(f"ratio full/bare: {report['ratio_full_to_bare']:.3f}")
    for r in report["results"]:
        print(f"  {r['name']}: {r['note']}")
    print(
        f"{report['database']}; TONGBAN_EXCHANGE_CONCURRENCY={report['concurrency']}; "
        f"payload {report['payload_bytes']} bytes; "
        f"warm-up {report['warmup']}; {report['machine']}; check {report['check']}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--pg-url", default=os.environ.get("TONGBAN_BENCH_PG_URL"))
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--case-messages", type=int, default=500)
    p.add_argument("--alg", choices=["EdDSA", "SM2"], default="EdDSA")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_bare:
        import uvicorn

        uvicorn.run(bare_app(), host="127.0.0.1", port=args.port, log_level="info")
        return 0
    if not (
        1 <= args.messages <= 100_000
        and 0 <= args.warmup <= 10_000
        and 1 <= args.case_messages <= 100_000
    ):
        p.error("messages or warmup out of bounds")
    report = run(args)
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0 if report["check"]["undelivered_on_sender"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
