"""Four nodes as four `tongban serve --node …` processes on 127.0.0.1, one jurisdiction
each, made by `tongban exchange init-local`. A bounded stream of cross-node applications
goes in through the API of different nodes; one competent node is killed with SIGKILL
half-way and restarted. Afterwards every case exists exactly once on its competent node,
no message is dead, and the officers' steps (taken over the API) reach the applicant's
view on the receiving node.

Everything is bounded: 40 cases, fixed timeouts; the processes are stopped at the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tongban.devserver import ServerFailed, ServerProcess, free_port_block

CASES = 40
#: Seconds allowed for every outbox to drain after the restart.
DRAIN_TIMEOUT = 60.0
MATTER = "YRD-GJJ-0002"  # a city-level online matter of every jurisdiction
FORM = {"proof_purpose": "异地贷款"}
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
#: jurisdiction -> (a resident of it in the demo data, the city whose authority decides)
PEOPLE = {
    "310000": ("zhangwei", "310000"),
    "320000": ("lina", "320500"),
    "330000": ("chenjie", "330100"),
    "340000": ("wangfang", "340100"),
}
VICTIM = "320000"  # the node killed half-way


@dataclass
class Proc:
    jurisdiction: str
    node_id: str
    directory: Path
    url: str
    env: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)
    server: ServerProcess = field(init=False)

    def __post_init__(self) -> None:
        argv = [sys.executable, "-m", "tongban", "serve", "--node", self.node_id]
        self.server = ServerProcess(
            self.node_id, argv, self.env, self.url, self.directory / "server.log"
        )

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.server.proc

    def start(self) -> None:
        self.server.start()

    def wait_ready(self) -> None:
        try:
            self.server.wait_ready()
        except ServerFailed as e:
            pytest.fail(str(e))

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.server.stop(sig)

    def sql(self, query: str, **params: Any) -> list[Any]:
        engine = create_engine(self.env["TONGBAN_DATABASE_URL"])
        try:
            with engine.connect() as c:
                return list(c.execute(text(query), params))
        finally:
            engine.dispose()

    def token(self, http: httpx.Client, username: str) -> dict[str, str]:
        if username not in self.tokens:
            r = http.post(
                f"{self.url}/api/v1/auth/token",
                data={"username": username, "password": "tongban-demo-2026"},
            )
            assert r.status_code == 200, r.text
            self.tokens[username] = r.json()["access_token"]
        return {"Authorization": f"Bearer {self.tokens[username]}"}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Proc]]:
    root = tmp_path_factory.mktemp("federation")
    base = free_port_block(4, start=21000, step=37)
    out = subprocess.run(
        [sys.executable, "-m", "tongban", "exchange", "init-local", "--nodes", "4"]
        + ["--base-port", str(base), "--dir", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
    )
    assert out.returncode == 0, out.stderr
    procs: dict[str, Proc] = {}
    for i, j in enumerate(sorted(PEOPLE)):
        node_id = f"node-{j}"
        directory = root / node_id
        env = dict(os.environ)
        for line in (directory / ".env").read_text().splitlines():
            key, _, value = line.partition("=")
            env[key] = value
        env.update(
            {
                "TONGBAN_WORKER_INTERVAL": "0.2",
                "TONGBAN_EXCHANGE_BACKOFF": "0.3,0.6,1",
                "TONGBAN_EXCHANGE_MAX_ATTEMPTS": "1000",
                "PYTHONUNBUFFERED": "1",
            }
        )
        procs[j] = Proc(j, node_id, directory, f"http://127.0.0.1:{base + i}", env)
    try:
        for p in procs.values():
            p.start()
        for p in procs.values():
            p.wait_ready()
        yield procs
    finally:
        for p in procs.values():
            p.stop()


def _submit(http: httpx.Client, node: Proc, target: str) -> dict[str, Any]:
    username, _ = PEOPLE[node.jurisdiction]
    headers = node.token(http, username)
    r = http.post(
        f"{node.url}/api/v1/attachments",
        headers=headers,
        data={"material_code": "id_card"},
        files={"file": ("id.pdf", PDF + os.urandom(8).hex().encode(), "application/pdf")},
    )
    assert r.status_code == 201, r.text
    body = {
        "matter_code": MATTER,
        "competent_jurisdiction": target,
        "competent_city": PEOPLE[target][1],
        "mode": "online",
        "form_data": FORM,
        "consent": True,
        "attachment_ids": [r.json()["id"]],
    }
    r = http.post(f"{node.url}/api/v1/cases", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return {**r.json(), "receiving": node.jurisdiction, "competent": target}


def _wait_drained(nodes: dict[str, Proc]) -> None:
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while time.monotonic() < deadline:
        busy = [
            (j, n)
            for j, p in nodes.items()
            for (n,) in p.sql("SELECT count(*) FROM outbox_message WHERE status = 'pending'")
            if n
        ]
        if not busy:
            return
        time.sleep(0.3)
    pytest.fail(f"outboxes not drained in {DRAIN_TIMEOUT} s: {busy}")


def test_four_nodes_survive_a_sigkill_and_lose_nothing(nodes: dict[str, Proc]) -> None:
    order = sorted(PEOPLE)
    submitted: list[dict[str, Any]] = []
    with httpx.Client(timeout=30) as http:
        for i in range(CASES):
            if i == CASES // 2:
                nodes[VICTIM].stop(signal.SIGKILL)
                assert nodes[VICTIM].proc is not None and nodes[VICTIM].proc.returncode == -9
            alive = [j for j in order if nodes[j].proc and nodes[j].proc.poll() is None]
            receiving = alive[i % len(alive)]
            # Half of the cases go to the victim's jurisdiction, the rest elsewhere.
            target = VICTIM if i % 2 == 0 and receiving != VICTIM else None
            if target is None:
                others = [j for j in order if j != receiving]
                target = others[i % len(others)]
            submitted.append(_submit(http, nodes[receiving], target))
        assert sum(c["competent"] == VICTIM for c in submitted[CASES // 2 :]) >= 5
        nodes[VICTIM].start()
        nodes[VICTIM].wait_ready()
        _wait_drained(nodes)

        for j, p in nodes.items():
            dead = p.sql("SELECT id, type, last_error FROM outbox_message WHERE status = 'dead'")
            assert dead == [], (j, dead)
        for c in submitted:
            competent = nodes[c["competent"]]
            rows = competent.sql(
                "SELECT handoff, count(*) FROM service_case WHERE number = :n GROUP BY handoff",
                n=c["number"],
            )
            assert rows == [("delivered", 1)], (c["number"], rows)
            mine = nodes[c["receiving"]].sql(
                "SELECT handoff FROM service_case WHERE number = :n", n=c["number"]
            )
            assert mine == [("delivered",)], (c["number"], mine)

        # Officers act on every fourth case on the competent node, over the API.
        acted = submitted[::4]
        for c in acted:
            competent = nodes[c["competent"]]
            officer = competent.token(http, f"{PEOPLE[c['competent']][1]}-housing_fund-reviewer")
            for action in ("accept", "start_review"):
                r = http.post(
                    f"{competent.url}/api/v1/cases/{c['id']}/actions",
                    json={"action": action},
                    headers=officer,
                )
                assert r.status_code == 200, r.text
        _wait_drained(nodes)
        for c in acted:
            receiving = nodes[c["receiving"]]
            username, _ = PEOPLE[c["receiving"]]
            r = http.get(
                f"{receiving.url}/api/v1/cases/{c['id']}", headers=receiving.token(http, username)
            )
            assert r.status_code == 200, r.text
            view = r.json()
            assert view["state"] == "under_review", view
            actions = [e["action"] for e in view["events"]]
            assert actions == ["submit", "forwarded", "accept", "start_review"], actions
