"""How long each city-wide or node-wide lock of the write path is held per case
submission, and how submissions scale with concurrent clients, on PostgreSQL, for the
write path before issue 14 and now, in the same run on the same database.

The two locks:
- the **number counter** of a city and day (`number_counter`, scope `case:<city>`):
  before, bumped in the request's transaction and held to its COMMIT; now a block of
  numbers is taken in one autocommit statement of its own (kernel/numbering.py);
- the **audit chain's head** (`audit_head`, one row per node): before, locked by the
  chaining step just before COMMIT and held through it; now the staged entries commit
  with the request and are sealed after it in one statement (audit/hook.py).

How the holds are measured: server-side timing behind TONGBAN_LOCK_TIMING
(kernel/lockstats.py). A lock held to the end of a transaction is timed by the server
process from the statement that takes it to the transaction's end; a lock taken and
released inside one autocommit statement is timed by PostgreSQL (clock_timestamp() -
statement_timestamp() as the statement returns its rows: the commit right after is not
included, cheap here since it flushes nothing), and that statement's wall time seen by
the server process is printed beside it as an upper bound ("wall"). Per submission = the sum of all holds of
that lock during a measured batch / the submissions of the batch; the lock-implied
ceiling is its inverse (submissions/s that lock alone would allow, whatever the cores).

Both servers are `tongban serve` of the working tree, one process each, on one database:
"before" starts with `numbering.BLOCKS = False` and `hook.SEAL_AFTER_COMMIT = False`
(the code paths kept for this comparison), "after" as shipped. A submission is what
benchmarks/bench_cases.py submits (its helpers, imported): the uploads of the required
materials and POST /api/v1/cases. One city: one resident (合肥) on every client; four
cities: four residents of four cities (合肥, 上海, 苏州, 杭州) in turn, i.e. four case
counters, one audit head. For each configuration the two servers take turns (the order
reversed each time), so the machine's load falls on both alike.

Usage (`make bench` starts a throwaway PostgreSQL server and runs this):
    python benchmarks/bench_write_locks.py --pg-url postgresql+psycopg://user@127.0.0.1:5432/postgres
        [--per-client 30] [--clients 1,2,4,8] [--quick]
Writes var/bench/write_locks.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _before
import bench_cases
import httpx
from bench_cases import Target, percentile

from tongban.devserver import free_port, pg_database
from tongban.devserver import running as server

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench" / "write_locks.json"
#: The demo residents of four cities (kernel demo data), the first alone for one city.
RESIDENTS = ("wangfang", "zhangwei", "lina", "chenjie")
#: How each server starts: the write path before issue 14, and now.
MODES = {
    "before": "numbering.BLOCKS = False; hook.SEAL_AFTER_COMMIT = False",
    "after": "pass",
}
WRAPPER = (
    "import sys\n"
    "from tongban.kernel import numbering\n"
    "from tongban.audit import hook\n"
    "{setup}\n"
    "from tongban.cli import app\n"
    "sys.argv = ['tongban', *sys.argv[1:]]\n"
    "app()\n"
)
#: The locks, by the name lockstats records, and what they lock.
LOCKS = {
    "number": ("number.row", "number.block"),  # a city's case counter (per day)
    "audit": ("audit.head", "audit.seal"),  # the node's chain head
}
AIM_MS = 0.5
#: Seconds a server may take to answer /healthz (a loaded, shared machine is slow).
STARTUP = 300.0


def read_holds(path: Path) -> dict[str, list[float]]:
    holds: dict[str, list[float]] = {}
    if not path.exists():
        return holds
    for line in path.read_text().splitlines():
        name, _, value = line.partition("\t")
        if value:
            holds.setdefault(name, []).append(float(value))
    return holds


def combined(targets: list[Target], name: str) -> Target:
    """One target submitting as each of `targets`' residents in turn."""

    def one(client: httpx.Client, i: int) -> None:
        targets[i % len(targets)].one(client, i)

    return Target(targets[0].key, name, targets[0].base, one, targets[0].http_requests_each)


def measure(target: Target, timing: Path, count: int, clients: int, warm: int) -> dict[str, Any]:
    target.warm(warm, clients)
    time.sleep(0.3)
    timing.write_text("")
    target.latencies_ms.clear()
    seconds, errors = target.batch(0, count, clients)
    time.sleep(0.5)  # the last seals and transaction ends are written
    holds = read_holds(timing)
    row: dict[str, Any] = {
        "submissions": count,
        "seconds": round(seconds, 3),
        "per_second": round(count / seconds, 1) if seconds else 0.0,
        "p50_ms": round(percentile(target.latencies_ms, 50), 1),
        "p95_ms": round(percentile(target.latencies_ms, 95), 1),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }
    for lock, names in LOCKS.items():
        values = [v for n in names for v in holds.get(n, [])]
        total = sum(values)
        per = total / count if count else 0.0
        row[f"{lock}_holds"] = len(values)
        row[f"{lock}_kind"] = "/".join(n for n in names if n in holds) or "-"
        row[f"{lock}_ms_per_submission"] = round(per * 1000, 3)
        row[f"{lock}_hold_p50_ms"] = round(percentile(values, 50) * 1000, 3) if values else 0.0
        row[f"{lock}_hold_max_ms"] = round(max(values) * 1000, 3) if values else 0.0
        row[f"{lock}_ceiling_per_second"] = round(1 / per) if per else None
        wall = [v for n in names for v in holds.get(f"{n}.wall", [])]
        if wall:  # one-statement holds: also their wall time seen by the server process
            row[f"{lock}_wall_ms_per_submission"] = round(sum(wall) / count * 1000, 3)
    return row


def run(args: argparse.Namespace) -> dict[str, Any]:
    after = _before.after_tree()
    clients_list = [int(c) for c in args.clients.split(",")]
    with ExitStack() as stack:
        tmpdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tongban-locks-")))
        db = stack.enter_context(pg_database(args.pg_url, "write_locks"))
        print("preparing the database (migrations, demo federation) ...", flush=True)
        pg_version = bench_cases.prepare_tree(after, db)
        timings: dict[str, Path] = {}
        targets: dict[tuple[str, int], Target] = {}
        for mode, setup in MODES.items():
            port = free_port()
            timings[mode] = tmpdir / f"locks-{mode}.txt"
            env = after.env(
                {
                    **os.environ,
                    "TONGBAN_DATABASE_URL": db,
                    "TONGBAN_EMBEDDED_WORKER": "false",
                    "TONGBAN_UPLOAD_DIR": str(tmpdir / f"uploads-{mode}"),
                    "TONGBAN_SECRET_KEY": "bench-secret-key",
                    "TONGBAN_LOCK_TIMING": str(timings[mode]),
                }
            )
            argv = [sys.executable, "-c", WRAPPER.format(setup=setup), "serve"]
            argv += ["--host", "127.0.0.1", "--port", str(port), "--no-worker"]
            base = stack.enter_context(
                server(f"tongban-{mode}", argv, env, port, tmpdir, timeout=STARTUP)
            )
            residents = []
            for username in RESIDENTS:
                bench_cases.RESIDENT = username  # read by tongban_target at its call
                residents.append(bench_cases.tongban_target(after, base, cold_token=False))
            residents[0].key = mode
            targets[(mode, 1)] = residents[0]
            targets[(mode, 4)] = combined(residents, f"{mode}: four cities")
            targets[(mode, 4)].key = mode
        rows: list[dict[str, Any]] = []
        turn = 0
        for cities in (1, 4):
            for clients in clients_list:
                count = args.per_client * clients
                order = list(MODES) if turn % 2 == 0 else list(reversed(MODES))
                turn += 1
                for mode in order:
                    print(
                        f"{mode}: {cities} city(ies), {clients} client(s), {count} ...", flush=True
                    )
                    row = measure(
                        targets[(mode, cities)], timings[mode], count, clients, args.warmup
                    )
                    row.update({"mode": mode, "cities": cities, "clients": clients})
                    row["name"] = f"{mode}: {cities} city x {clients} clients"
                    rows.append(row)
    rows.sort(key=lambda r: (r["cities"], r["clients"], r["mode"] != "before"))
    report: dict[str, Any] = {
        "benchmark": "write_locks",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}",
        "load_average": list(os.getloadavg()),
        "postgresql": pg_version,
        "per_client": args.per_client,
        "aim_ms": AIM_MS,
        "results": rows,
    }
    by = {(r["mode"], r["cities"], r["clients"]): r for r in rows}
    top = max(clients_list)
    lines = []
    for cities in (1, 4):
        b, a = by.get(("before", cities, top)), by.get(("after", cities, top))
        if b and a and b["per_second"]:
            report[f"ratio_after_to_before_{cities}city_{top}clients"] = round(
                a["per_second"] / b["per_second"], 3
            )
            lines.append(
                {
                    "figure": f"case submission, {cities} city, {top} clients (submissions/s)",
                    "unit": "submissions/s",
                    "before": b["per_second"],
                    "after": a["per_second"],
                    "ratio_after_to_before": round(a["per_second"] / b["per_second"], 3),
                    "note": "before = the write path before issue 14 (same tree, flags off)",
                }
            )
    for lock in LOCKS:
        worst = max(
            (r[f"{lock}_ms_per_submission"] for r in rows if r["mode"] == "after"), default=0
        )
        report[f"after_{lock}_worst_ms_per_submission"] = worst
    report["before_after"] = lines
    return report


def print_table(report: dict[str, Any]) -> None:
    print()
    print(
        f"locks held per case submission (ms; aim <= {report['aim_ms']}) and scaling "
        f"(load average {', '.join(f'{x:.1f}' for x in report['load_average'])})"
    )
    head = (
        f"{'mode':<7}{'cities':>7}{'clients':>8}{'subs/s':>8}{'p50 ms':>8}{'p95 ms':>8}"
        f"{'number ms (wall)':>19}{'ceiling/s':>10}{'audit ms (wall)':>18}{'ceiling/s':>10}"
        f"{'err':>4}"
    )
    print(head)
    print("-" * len(head))

    def held(r: dict[str, Any], lock: str) -> str:
        wall = r.get(f"{lock}_wall_ms_per_submission")
        return f"{r[f'{lock}_ms_per_submission']:.3f}" + (f" ({wall:.3f})" if wall else "")

    for r in report["results"]:
        print(
            f"{r['mode']:<7}{r['cities']:>7}{r['clients']:>8}{r['per_second']:>8.1f}"
            f"{r['p50_ms']:>8.1f}{r['p95_ms']:>8.1f}"
            f"{held(r, 'number'):>19}{r['number_ceiling_per_second'] or 0:>10}"
            f"{held(r, 'audit'):>18}{r['audit_ceiling_per_second'] or 0:>10}{r['errors']:>4}"
        )
    print(
        "number = the city's case counter row (number.row held to COMMIT before; "
        "number.block, one autocommit statement per block, now)"
    )
    print(
        "audit = the node's chain head (audit.head held from the chaining step to COMMIT "
        "before; audit.seal, one statement after the commit, run by the process's "
        "background sealer, now)"
    )
    print("ceiling = 1 / (lock held per submission): what that lock alone allows per second")
    for key, value in report.items():
        if key.startswith(("ratio", "after_")):
            print(f"{key}: {value}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument(
        "--pg-url",
        default=os.environ.get("TONGBAN_BENCH_PG_URL"),
        help="a PostgreSQL server URL whose user may create databases",
    )
    p.add_argument("--per-client", type=int, default=30, help="measured submissions per client")
    p.add_argument("--clients", default="1,2,4,8")
    p.add_argument("--warmup", type=int, default=4)
    p.add_argument("--quick", action="store_true", help="8 per client, 2 warm-up")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    if not args.pg_url:
        p.error("--pg-url (or TONGBAN_BENCH_PG_URL) is required")
    if args.quick:
        args.per_client, args.warmup = 8, 2
    report = run(args)
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
