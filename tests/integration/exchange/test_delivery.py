"""Delivery between nodes: retries with back-off while the receiver is down, the
dead-letter list after the last attempt or a permanent refusal, replay, and the inbox's
answers over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from tongban.crypto.signing import Alg, generate
from tongban.exchange import service as exchange
from tongban.exchange.models import InboxMessage, OutboxMessage
from tongban.exchange.transport import signed_request
from tongban.migrate import upgrade


def _reset_due(node: Any, msg_id: uuid.UUID) -> OutboxMessage:
    with node.session() as s:
        m = s.get(OutboxMessage, msg_id)
        assert m is not None
        m.next_attempt_at = m.created_at
        s.commit()
        return m


def test_retries_while_down_then_dead_then_replayed(
    tools: Any, fed: dict[str, Any], hosts: Any
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    hosts.down.add(b.host)
    case, _ = tools.submit(a)
    (msg,) = a.outbox(type="case.forwarded")
    before = time.time()
    a.dispatch()
    m = a.outbox(id=msg.id)[0]
    assert m.status == "pending" and m.attempts == 1 and "ConnectError" in (m.last_error or "")
    assert m.next_attempt_at.timestamp() >= before  # backed off, not leased forever
    for _ in range(a.settings.exchange_max_attempts - 1):
        _reset_due(a, msg.id)
        a.dispatch()
    m = a.outbox(id=msg.id)[0]
    assert m.status == "dead" and m.attempts == 3 and m.dead_at is not None
    with a.session() as s:
        assert [d.id for d in exchange.dead_letters(s)] == [msg.id]

    hosts.down.clear()
    with a.session() as s:
        exchange.replay(s, [msg.id], "ops-alice")
        s.commit()
    m = a.outbox(id=msg.id)[0]
    assert (m.status, m.attempts, m.replays, m.replayed_by) == ("pending", 0, 1, "ops-alice")
    assert a.dispatch() == 1
    assert a.outbox(id=msg.id)[0].status == "delivered"
    assert tools.stored_case(b, case.number) is not None


def test_a_permanent_refusal_is_a_dead_letter_at_once(tools: Any, fed: dict[str, Any]) -> None:
    a, b = fed["node-a"], fed["node-b"]
    with a.session() as s:
        msg = exchange.send(s, "no.such.type", "340000", "320000", {"x": 1})
        s.commit()
    a.dispatch()
    m = a.outbox(id=msg.id)[0]
    assert m.status == "dead" and m.attempts == 1
    assert "HTTP 403" in (m.last_error or "") and "type-not-allowed" in (m.last_error or "")
    with b.session() as s:
        assert s.get(InboxMessage, msg.id) is None


def test_inbox_answers_problems_and_writes_nothing(
    tools: Any, fed: dict[str, Any], hosts: Any
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    client = hosts.apps[b.host]
    uri = f"http://{b.host}/exchange/v1/inbox"
    env = {
        "id": str(uuid.uuid4()),
        "type": "case.status_changed",
        "source_node": "node-a",
        "source_jurisdiction": "340000",
        "target_jurisdiction": "320000",
        "created_at": "2026-01-01T00:00:00+00:00",
        "payload": {"number": "none"},
    }
    with b.session() as s:
        inbox_before = s.scalar(select(func.count()).select_from(InboxMessage))
    stranger = generate(Alg.EDDSA)
    cases = {
        "exchange/unknown-key": signed_request(env, stranger, uri),
        "exchange/stale": signed_request(env, _key(a), uri, created=int(time.time()) - 10_000),
        "exchange/unknown-node": signed_request({**env, "source_node": "x"}, _key(a), uri),
    }
    for expected, (body, headers) in cases.items():
        r = client.post(uri, content=body, headers=headers)
        assert r.status_code in (400, 401, 403), r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["type"].endswith(expected), r.json()
    # A well-signed message whose handler fails is a 500 the sender retries.
    body, headers = signed_request(env, _key(a), uri)
    r = client.post(uri, content=body, headers=headers)
    assert r.status_code == 500 and r.json()["type"].endswith("exchange/handler-failed")
    with b.session() as s:
        assert s.scalar(select(func.count()).select_from(InboxMessage)) == inbox_before
    card = client.get(f"http://{b.host}/exchange/v1/node").json()
    assert card["node"] == "node-b" and card["keys"][0]["kid"]


def _key(node: Any) -> Any:
    with node.session() as s:
        key = exchange.node_key(s, node.id)
        s.commit()
        return key


def test_cli_lists_and_replays_dead_letters(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    from tongban.db import make_engine, session_factory

    engine = make_engine(url)
    with session_factory(engine)() as s:
        msg = exchange.send(s, "case.forwarded", "310000", "320000", {"number": "n"})
        msg.status, msg.attempts, msg.last_error = "dead", 8, "HTTP 503 from node-b"
        s.commit()
        msg_id = msg.id
    env = {**os.environ, "TONGBAN_DATABASE_URL": url}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tongban", "exchange", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    listed = cli("dead-letters", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["id"] == str(msg_id) and row["attempts"] == 8 and "503" in row["last_error"]
    assert cli("replay", str(uuid.uuid4())).returncode == 1  # not a dead letter
    out = cli("replay", "--all", "--by", "ops-bob")
    assert out.returncode == 0 and "replayed 1" in out.stdout, out.stderr
    status = cli("status")
    assert "pending=1" in status.stdout and "dead=0" in status.stdout
    with session_factory(engine)() as s:
        m = s.get(OutboxMessage, msg_id)
        assert m is not None and m.replayed_by == "ops-bob" and m.attempts == 0
    engine.dispose()


def test_no_transaction_is_open_while_a_message_is_on_the_wire(
    tools: Any, fed: dict[str, Any], hosts: Any
) -> None:
    """While the sender waits for the receiver, its own database stays writable: on SQLite
    every transaction holds the write lock, so a slow peer would otherwise stall every
    write of the sending node (and, in a federation, its own inbox)."""
    from sqlalchemy import create_engine, text

    a, b = fed["node-a"], fed["node-b"]
    tools.submit(a)
    tools.submit(a)  # the second message of a pass goes with the signing key already read
    seen: list[str] = []
    deliver_to_b = hosts.apps[b.host]

    class Probe:
        def request(self, *args: Any, **kwargs: Any) -> Any:
            # Another connection writes to A's database while A's message is in flight.
            url = a.settings.database_url
            wait = (
                {"timeout": 0.5} if url.startswith("sqlite") else {"options": "-c lock_timeout=500"}
            )
            probe = create_engine(url, connect_args=wait)
            try:
                with probe.begin() as c:
                    c.execute(text("UPDATE outbox_message SET last_error = last_error"))
                seen.append("written")
            finally:
                probe.dispose()
            return deliver_to_b.request(*args, **kwargs)

    hosts.apps[b.host] = Probe()
    assert a.dispatch() >= 2
    assert len(seen) >= 2 and all(s == "written" for s in seen)
