"""Concurrent audited writers on PostgreSQL: transactions per second with the audit
chain's old append path (the head row locked from the first audited insert to the end of
the transaction) and the new one (entries staged without a lock, chained at commit), in
one run; the ratio new/old is the figure.

Each writer thread runs transactions in its own session: an audited insert (an outbox
row, whose hook adds a `message.sent` entry), then the rest of the transaction — a
`pg_sleep(--work-ms)` standing for the other statements and the application's work a
real write does after its first audited row — then a second audited insert, and
COMMIT. With the old path every other writer waits for the whole of that; with the new
one they only queue for the chaining step at commit. A third row runs the same
transactions with unaudited inserts (Core INSERT, which the hook does not see): the
floor. After each audited run the chain is verified (`audit.service.verify`) and every
entry counted: none lost, none staged left.

    python benchmarks/bench_audit_writers.py --pg-url URL [--threads 8] [--per-thread 40]
        [--work-ms 5] [--quick]

Writes var/bench/audit_writers.json. A fresh database on the given server is migrated
and dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tongban.devserver import pg_database

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench" / "audit_writers.json"


def node_sessions(factory: Any, url: str) -> Any:
    """`factory`, whose sessions carry a node's settings where the code reads them from
    the session (kernel.node.settings_of), as a node's own sessions do."""
    try:
        from tongban.config import Settings
        from tongban.kernel.node import bind_settings
    except ImportError:  # code from before the kernel: settings are process-wide
        return factory
    return bind_settings(factory, Settings(database_url=url, embedded_worker=False))


def run_mode(url: str, mode: str, threads: int, per_thread: int, work_ms: float) -> dict[str, Any]:
    from sqlalchemy import create_engine, func, insert, select, text
    from sqlalchemy.orm import sessionmaker

    from tongban.audit import hook, service
    from tongban.audit.models import AuditEntry
    from tongban.exchange.models import OutboxMessage

    hook.DEFERRED = mode != "old"
    engine = create_engine(url, pool_size=threads + 2, max_overflow=0)
    sessions = node_sessions(sessionmaker(engine), url)
    with sessions() as s:
        start_seq = service.head(s).seq  # type: ignore[union-attr]
        s.rollback()
    barrier = threading.Barrier(threads + 1)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def row(n: int, i: int, k: int) -> dict[str, Any]:
        return {
            "type": "bench.audit",
            "source_jurisdiction": "310000",
            "target_jurisdiction": "320000",
            "payload": {"n": n, "i": i, "k": k},
            "status": "delivered",
        }

    def writer(n: int) -> None:
        mine: list[float] = []
        try:
            barrier.wait()
            for i in range(per_thread):
                t0 = time.perf_counter()
                with sessions() as s:
                    for k in (0, 1):
                        if mode == "unaudited":
                            s.execute(insert(OutboxMessage), [row(n, i, k)])
                        else:
                            s.add(OutboxMessage(**row(n, i, k)))
                            s.flush()
                        if k == 0:
                            s.execute(text("SELECT pg_sleep(:s)"), {"s": work_ms / 1000})
                    s.commit()
                mine.append(time.perf_counter() - t0)
        except Exception as exc:  # noqa: BLE001 - counted and shown
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for t in workers:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in workers:
        t.join()
    seconds = time.perf_counter() - t0
    done = len(latencies)
    result: dict[str, Any] = {
        "mode": mode,
        "transactions": done,
        "seconds": round(seconds, 3),
        "per_second": round(done / seconds, 1) if seconds else 0.0,
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p95_ms": round(sorted(latencies)[int(0.95 * (done - 1))] * 1000, 1) if latencies else None,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }
    if mode != "unaudited":
        with sessions() as s:
            added = s.scalar(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.seq > start_seq)
            )
            staged = s.scalar(text("SELECT count(*) FROM audit_pending"))
            report = service.verify(s)
            s.rollback()
        result.update(
            entries_added=int(added or 0),
            entries_expected=2 * done,
            staged_left=int(staged or 0),
            verify_ok=report.ok,
        )
    engine.dispose()
    hook.DEFERRED = True
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tongban.migrate import upgrade

    with pg_database(args.pg_url, "auditw") as url:
        upgrade(url)
        # A short warm-up of each path (connections, statement caches), not measured.
        for mode in ("old", "new"):
            run_mode(url, mode, 2, 3, args.work_ms)
        results = [
            run_mode(url, mode, args.threads, args.per_thread, args.work_ms)
            for mode in ("old", "new", "unaudited")
        ]
    old, new = results[0], results[1]
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "threads": args.threads,
        "per_thread": args.per_thread,
        "work_ms": args.work_ms,
        "results": results,
        "ratio_new_to_old": round(new["per_second"] / old["per_second"], 2)
        if old["per_second"]
        else None,
        # The before/after line of the summary: here both paths run in this tree (the old
        # one is the append path before issue 11, kept behind audit.hook.DEFERRED).
        "before_after": [
            {
                "figure": f"concurrent audited writers ({args.threads} threads)",
                "unit": "txn/s",
                "before": old["per_second"],
                "after": new["per_second"],
                "ratio_after_to_before": round(new["per_second"] / old["per_second"], 3)
                if old["per_second"]
                else None,
                "before_commit": None,
                "note": "old append path (head locked for the txn) vs new (staged, chained at "
                f"commit), both in this tree; floor without audit {results[2]['per_second']}/s",
            }
        ],
        "load": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def print_table(report: dict[str, Any]) -> None:
    head = (
        f"{'append path':<34} {'txns':>6} {'seconds':>8} {'txn/s':>8} {'p50 ms':>8} "
        f"{'p95 ms':>8} {'entries':>8} {'verify':>7}"
    )
    names = {
        "old": "old: head locked for the whole txn",
        "new": "new: staged, chained at commit",
        "unaudited": "floor: the same without audit",
    }
    print()
    print(
        f"{report['threads']} writer threads x {report['per_thread']} transactions, each: audited "
        f"insert, {report['work_ms']} ms of other work, audited insert, commit"
    )
    print(head)
    print("-" * len(head))
    for r in report["results"]:
        entries = f"{r['entries_added']}/{r['entries_expected']}" if "entries_added" in r else "-"
        ok = (
            ("ok" if r["verify_ok"] and not r["staged_left"] else "FAIL")
            if "verify_ok" in r
            else "-"
        )
        print(
            f"{names[r['mode']]:<34} {r['transactions']:>6} {r['seconds']:>8.2f} "
            f"{r['per_second']:>8.1f} {r['p50_ms'] or 0:>8.1f} {r['p95_ms'] or 0:>8.1f} "
            f"{entries:>8} {ok:>7}"
        )
        if r["errors"]:
            print(f"  {r['errors']} error(s), first: {r['first_error']}")
    print("-" * len(head))
    print(f"ratio new/old (transactions per second): {report['ratio_new_to_old']}")
    print(f"load: {report['load']} on {report['cpus']} cpu(s)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument(
        "--pg-url",
        default=os.environ.get("TONGBAN_BENCH_PG_URL"),
        help="PostgreSQL server URL whose user may create databases",
    )
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--per-thread", type=int, default=40)
    p.add_argument("--work-ms", type=float, default=5.0)
    p.add_argument("--quick", action="store_true", help="15 transactions a thread")
    p.add_argument("--out", type=Path, default=OUT)
    if p.parse_known_args(argv)[0].quick:  # smaller defaults; counts given still win
        p.set_defaults(per_thread=15)
    args, _unknown = p.parse_known_args(argv)  # make bench passes its extra arguments to all
    if not args.pg_url:
        p.error("no PostgreSQL server: pass --pg-url or set TONGBAN_BENCH_PG_URL")
    if not (
        1 <= args.threads <= 64 and 1 <= args.per_thread <= 10_000 and 0 <= args.work_ms <= 1000
    ):
        p.error("threads, per-thread or work-ms out of bounds")
    report = run(args)
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"written to {args.out}")
    bad = [
        r
        for r in report["results"]
        if r["errors"]
        or (
            "verify_ok" in r
            and not (r["verify_ok"] and r["entries_added"] == r["entries_expected"])
        )
    ]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
