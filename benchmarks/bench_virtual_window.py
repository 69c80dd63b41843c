"""Virtual window (跨省远程虚拟窗口) latency between two Chromium browsers (fake camera and
microphone) on two `tongban serve --node …` processes made by `exchange init-local`
(node-310000: the 上海 clerk; node-320000: the 合肥 officer, where sessions live):

- **start → connected**: from the clerk's click on 发起远程窗口 to audio and video
  connected on both sides, with an officer waiting on the queue page (the page notices
  the new session itself; the officer then takes it); p50/p95 over --sessions runs;
- **form change**: from one side typing a value to the other side's input showing it,
  both directions, p50/p95 over --rounds changes each way.

Each is measured twice in the same run, on the same nodes: with the pages' push channel
(held reads, virtualwindow/push.py) and, as the reference, with the pages polling as
before it (room 300/400 ms, queue 2 s; the script's `tongban.vw.poll` switch in
localStorage). `ratio_form_p95` = push p95 / polling p95 (below 1: push is faster);
`ratio_form_p95_target` = push p95 / 1000 ms, the issue's target. Writes
var/bench/virtual_window.json. --pg-url is accepted like every benchmark's and unused
(the nodes run on SQLite, as `init-local` makes them).

    python benchmarks/bench_virtual_window.py [--sessions 5] [--rounds 20] [--quick]
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tongban.demo import DEMO_PASSWORD
from tongban.devserver import ServerProcess, free_port_block
from tongban.exchange.local import init_local

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench" / "virtual_window.json"
MATTER = "YRD-GJJ-0002"
CHROMIUM = os.environ.get("TONGBAN_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]


def _env(directory: Path) -> dict[str, str]:
    env = dict(os.environ)
    for line in (directory / ".env").read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value
    env.update({"TONGBAN_WORKER_INTERVAL": "0.2", "PYTHONUNBUFFERED": "1"})
    return env


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _sign_in(browser: Any, url: str, username: str, poll: bool = False) -> Any:
    ctx = browser.new_context(base_url=url, locale="zh-CN")
    ctx.set_default_timeout(30_000)
    if poll:  # the reference: the pages poll as they did before the push channel
        ctx.add_init_script("window.localStorage.setItem('tongban.vw.poll', '1')")
    page = ctx.new_page()
    page.goto("/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="登录", exact=True).click()
    page.wait_for_load_state()
    return page


def _connected(page: Any) -> bool:
    return bool(page.evaluate("window.vwStats()")["state"] == "connected")


def _start_to_connected(clerk: Any, officer: Any) -> float:
    officer.goto("/virtual-window/queue")  # the officer waits on the queue page
    officer.wait_for_load_state()
    clerk.goto("/virtual-window")
    clerk.select_option("#matter_code", MATTER)
    clerk.select_option("#city_code", "340100")
    started = time.monotonic()
    clerk.get_by_role("button", name="发起远程窗口").click()
    clerk.wait_for_url("**/virtual-window/s/*")
    # The queue page shows itself anew when a session arrives.
    officer.wait_for_selector(".vw-queue tbody tr", timeout=60_000)
    officer.get_by_role("button", name="接入下一位").click()
    officer.wait_for_url("**/virtual-window/officer/s/*")
    deadline = started + 60
    while time.monotonic() < deadline:
        if _connected(officer) and _connected(clerk):
            return time.monotonic() - started
        time.sleep(0.05)
    raise RuntimeError("media did not connect within 60 s")


def _seen(writer: Any, reader: Any, field: str, value: str) -> float:
    started = time.monotonic()
    writer.fill(f"#f-{field}", value)
    reader.wait_for_function(
        "([s, v]) => document.querySelector(s).value === v", arg=[f"#f-{field}", value]
    )
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg-url", default=None, help="accepted, unused (SQLite nodes)")
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sessions, rounds = (2, 5) if args.quick else (args.sessions, args.rounds)
    if not Path(CHROMIUM).exists():
        print(f"Chromium not found at {CHROMIUM} (TONGBAN_CHROMIUM)", file=sys.stderr)
        return 3
    from playwright.sync_api import sync_playwright

    root = Path(tempfile.mkdtemp(prefix="tongban-bench-vw-"))
    base = free_port_block(2, start=25100, step=41)
    init_local(root, 2, base)
    servers = []
    for directory in sorted(root.glob("node-*")):
        env = _env(directory)
        node_id, url = env["TONGBAN_NODE_ID"], env["TONGBAN_PUBLIC_URL"]
        argv = [sys.executable, "-m", "tongban", "serve", "--node", node_id]
        servers.append(ServerProcess(node_id, argv, env, url, directory / "server.log"))
    figures: dict[str, dict[str, list[float]]] = {}
    try:
        for s in servers:
            s.start()
        for s in servers:
            s.wait_ready(timeout=180)
        sh, ah = (s.base_url for s in servers)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            # Alternating modes, so that a change of the machine's load hits both.
            for mode in ("poll", "push", "poll", "push"):
                got = figures.setdefault(mode, {"connect": [], "to_officer": [], "to_clerk": []})
                clerk = _sign_in(browser, sh, "clerk-310000", poll=mode == "poll")
                officer = _sign_in(browser, ah, "340100-housing_fund-reviewer", mode == "poll")
                half = max(1, sessions // 2)  # each mode runs twice
                for i in range(half):
                    got["connect"].append(_start_to_connected(clerk, officer))
                    if i < half - 1:
                        officer.get_by_role("button", name="结束会话").click()
                        officer.wait_for_function(
                            "() => document.getElementById('vw-state').textContent === '已结束'"
                        )
                for i in range(max(1, rounds // 2)):
                    got["to_officer"].append(_seen(clerk, officer, "loan_city", f"上海{i}"))
                    got["to_clerk"].append(_seen(officer, clerk, "account_number", f"{100000 + i}"))
                officer.get_by_role("button", name="结束会话").click()
                clerk.context.close()
                officer.context.close()
            browser.close()
    finally:
        for s in servers:
            s.stop()
    load = os.getloadavg()
    result: dict[str, Any] = {
        "benchmark": "virtual_window",
        "at": datetime.now(UTC).isoformat(),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "loadavg_at_end": [round(x, 2) for x in load],
        "sessions_per_mode": len(figures["push"]["connect"]),
        "rounds_per_mode": len(figures["push"]["to_officer"]),
    }
    for mode, got in figures.items():
        both = got["to_officer"] + got["to_clerk"]
        result[mode] = {
            "start_to_connected_p50_ms": round(_pct(got["connect"], 0.5) * 1000),
            "start_to_connected_p95_ms": round(_pct(got["connect"], 0.95) * 1000),
            "form_clerk_to_officer_p50_ms": round(_pct(got["to_officer"], 0.5) * 1000),
            "form_clerk_to_officer_p95_ms": round(_pct(got["to_officer"], 0.95) * 1000),
            "form_officer_to_clerk_p50_ms": round(_pct(got["to_clerk"], 0.5) * 1000),
            "form_officer_to_clerk_p95_ms": round(_pct(got["to_clerk"], 0.95) * 1000),
            "form_p50_ms": round(statistics.median(both) * 1000),
            "form_p95_ms": round(_pct(both, 0.95) * 1000),
        }
    push, poll = result["push"], result["poll"]
    result["reference"] = "the same pages polling (before the push channel), same run"
    result["ratio_form_p95"] = round(push["form_p95_ms"] / max(1, poll["form_p95_ms"]), 3)
    result["ratio_form_p95_target"] = round(push["form_p95_ms"] / 1000, 3)
    print(f"{'virtual window':<44} {'mode':>5} {'p50 ms':>8} {'p95 ms':>8}")
    print("-" * 68)
    for mode in ("poll", "push"):
        r = result[mode]
        rows = (
            ("start -> media connected (officer waiting)", "start_to_connected"),
            ("form change clerk -> officer", "form_clerk_to_officer"),
            ("form change officer -> clerk", "form_officer_to_clerk"),
            ("form change, both ways", "form"),
        )
        for label, key in rows:
            print(f"{label:<44} {mode:>5} {r[key + '_p50_ms']:>8} {r[key + '_p95_ms']:>8}")
    print(f"ratio form-change p95 push / poll (same run): {result['ratio_form_p95']}")
    print(f"ratio form-change p95 push / 1000 ms target: {result['ratio_form_p95_target']}")
    print(f"load average at the end: {result['loadavg_at_end']}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
