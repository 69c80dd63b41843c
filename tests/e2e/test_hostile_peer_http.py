"""A hostile peer over real HTTP between two node processes (`tongban serve --node …`,
made by `tongban exchange init-local`), issue 10 items 1 and 2: node 320000 holds a
valid key of the federation and signs its messages correctly, yet

- a status change for a case received and handled on node 310000 (a case it has no part
  in) is refused 403 and the case is unchanged;
- a resubmission of a case it did receive, whose material's "sha256" is a path, is
  refused 422 and no attachment row is written.

Bounded: two processes, fixed timeouts, stopped at the end."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from tongban.devserver import ServerFailed, ServerProcess, free_port_block
from tongban.exchange import service as exchange
from tongban.exchange.transport import signed_request

MATTER = "YRD-GJJ-0002"
FORM = {"proof_purpose": "异地贷款"}
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PEOPLE = {"310000": ("zhangwei", "310000"), "320000": ("lina", "320500")}


class Proc:
    def __init__(self, jurisdiction: str, directory: Path, url: str, env: dict[str, str]):
        self.jurisdiction = jurisdiction
        self.node_id = f"node-{jurisdiction}"
        self.url = url
        self.env = env
        argv = [sys.executable, "-m", "tongban", "serve", "--node", self.node_id]
        self.server = ServerProcess(self.node_id, argv, env, url, directory / "server.log")

    def sql(self, query: str, **params: Any) -> list[Any]:
        engine = create_engine(self.env["TONGBAN_DATABASE_URL"])
        try:
            with engine.connect() as c:
                return list(c.execute(text(query), params))
        finally:
            engine.dispose()

    def key(self) -> Any:
        """This node's own message-signing key, read from its database."""
        engine = create_engine(self.env["TONGBAN_DATABASE_URL"])
        try:
            with Session(engine) as s:
                return exchange.node_key(s, self.node_id)
        finally:
            engine.dispose()

    def token(self, http: httpx.Client, username: str) -> dict[str, str]:
        r = http.post(
            f"{self.url}/api/v1/auth/token",
            data={"username": username, "password": "tongban-demo-2026"},
        )
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Proc]]:
    root = tmp_path_factory.mktemp("hostile")
    base = free_port_block(2, start=24000, step=41)
    out = subprocess.run(
        [sys.executable, "-m", "tongban", "exchange", "init-local", "--nodes", "2"]
        + ["--base-port", str(base), "--dir", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
    )
    assert out.returncode == 0, out.stderr
    procs: dict[str, Proc] = {}
    for i, j in enumerate(sorted(PEOPLE)):
        directory = root / f"node-{j}"
        env = dict(os.environ)
        for line in (directory / ".env").read_text().splitlines():
            key, _, value = line.partition("=")
            env[key] = value
        env.update({"TONGBAN_WORKER_INTERVAL": "0.2", "PYTHONUNBUFFERED": "1"})
        procs[j] = Proc(j, directory, f"http://127.0.0.1:{base + i}", env)
    try:
        for p in procs.values():
            p.server.start()
        for p in procs.values():
            try:
                p.server.wait_ready()
            except ServerFailed as e:
                pytest.fail(str(e))
        yield procs
    finally:
        for p in procs.values():
            p.server.stop()


def _submit(http: httpx.Client, node: Proc, target: str) -> dict[str, Any]:
    headers = node.token(http, PEOPLE[node.jurisdiction][0])
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
    return dict(r.json())


def _case(node: Proc, number: str) -> tuple[str, int, int]:
    ((state, events, atts),) = node.sql(
        "SELECT c.state,"
        " (SELECT count(*) FROM case_event e WHERE e.case_id = c.id),"
        " (SELECT count(*) FROM attachment a WHERE a.case_id = c.id)"
        " FROM service_case c WHERE c.number = :n",
        n=number,
    )
    return str(state), int(events), int(atts)


def _delivered(node: Proc, number: str) -> bool:
    """The case is on `node` and its hand-over recorded (the `forwarded` event)."""
    rows = node.sql("SELECT handoff FROM service_case WHERE number = :n", n=number)
    return rows == [("delivered",)]


def _status(number: str, seq: int, action: str, from_state: str, to_state: str) -> dict[str, Any]:
    at = datetime.now(UTC).isoformat()
    return {
        "number": number,
        "state": to_state,
        "seq": seq,
        "action": action,
        "comment": "",
        "event": {
            "id": str(uuid.uuid4()),
            "seq": seq,
            "action": action,
            "from_state": from_state,
            "to_state": to_state,
            "actor_name": "某人",
            "actor_role": "officer",
            "comment": "",
            "at": at,
        },
        "case": {
            "state": to_state,
            "handoff": "delivered",
            "result_text": None,
            "form_data": FORM,
            "deadline_flag": "ok",
            "accepted_at": at,
            "deadline": None,
            "closed_at": None,
        },
    }


def _post(
    http: httpx.Client, sender: Proc, receiver: Proc, source: str, payload: dict[str, Any]
) -> httpx.Response:
    uri = f"{receiver.url}/exchange/v1/inbox"
    env = {
        "id": str(uuid.uuid4()),
        "type": "case.status_changed",
        "source_node": sender.node_id,
        "source_jurisdiction": source,
        "target_jurisdiction": receiver.jurisdiction,
        "created_at": datetime.now(UTC).isoformat(),
        "payload": payload,
    }
    body, headers = signed_request(env, sender.key(), uri)
    return http.post(uri, content=body, headers=headers)


def _wait(predicate: Any, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    pytest.fail("timed out")


def test_a_correctly_signed_peer_cannot_rewrite_or_plant_files(nodes: dict[str, Proc]) -> None:
    sh, js = nodes["310000"], nodes["320000"]
    with httpx.Client(timeout=30) as http:
        # A case received and handled on 上海's node: 江苏's node has no part in it.
        local = _submit(http, sh, "310000")
        _wait(lambda: _delivered(sh, local["number"]))
        before = _case(sh, local["number"])
        _, events, _ = before
        r = _post(
            http,
            js,
            sh,
            "320000",
            _status(local["number"], events + 1, "accept", "submitted", "accepted"),
        )
        assert r.status_code == 403, r.text
        assert r.json()["type"].endswith("exchange/not-allowed")
        assert _case(sh, local["number"]) == before

        # A case 江苏 received for 上海: 江苏 is its receiving node, but a material named
        # by a path instead of a SHA-256 is refused before anything is written.
        mine = _submit(http, js, "310000")
        _wait(lambda: _delivered(sh, mine["number"]))
        before = _case(sh, mine["number"])
        _, events, _ = before
        payload = _status(
            mine["number"], events + 1, "resubmit", "correction_requested", "submitted"
        )
        payload["attachments"] = [
            {
                "material_code": "id_card",
                "filename": "passwd.pdf",
                "sha256": "../../../../../../etc/passwd",
                "size": 10,
                "content_type": "application/pdf",
            }
        ]
        r = _post(http, js, sh, "320000", payload)
        assert r.status_code == 422, r.text
        assert r.json()["type"].endswith("exchange/bad-payload") and "sha256" in r.json()["detail"]
        assert _case(sh, mine["number"]) == before
        assert sh.sql("SELECT count(*) FROM attachment WHERE length(sha256) <> 64") == [(0,)]
