"""Delivery between nodes: retries with back-off while the receiver is down, the
dead-letter list after the last attempt or a permanent refusal, replay, and the inbox's
answers over HTTP."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tongban.config import Settings
from tongban.contexts import build_node
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
    # A well-signed message whose payload is not a case.status_changed is refused for
    # good (4xx: the sender parks it as dead), before any handler runs.
    body, headers = signed_request(env, _key(a), uri)
    r = client.post(uri, content=body, headers=headers)
    assert r.status_code == 422 and r.json()["type"].endswith("exchange/bad-payload")
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
    node = build_node(Settings(database_url=url), session_factory(engine))
    with node.transaction() as s:
        msg = exchange.send(s, "case.forwarded", "310000", "320000", {"number": "n"})
        msg.status, msg.attempts, msg.last_error = "dead", 8, "HTTP 503 from node-b"
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
    with node.session_factory() as s:
        m = s.get(OutboxMessage, msg_id)
        assert m is not None and m.replayed_by == "ops-bob" and m.attempts == 0
    engine.dispose()


@pytest.mark.parametrize("batch", [100, 1], ids=["batched", "one-by-one"])
def test_no_transaction_is_open_while_a_message_is_on_the_wire(
    tools: Any, fed: dict[str, Any], hosts: Any, batch: int
) -> None:
    """While the sender waits for the receiver, its own database stays writable: on SQLite
    every transaction holds the write lock, so a slow peer would otherwise stall every
    write of the sending node (and, in a federation, its own inbox). The same for a
    batch and for messages posted one by one (to a node of an earlier release)."""
    from sqlalchemy import create_engine, text

    a, b = fed["node-a"], fed["node-b"]
    a.remote.batch = batch
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
    # One request for the batch; one per message one by one.
    assert len(seen) >= (1 if batch > 1 else 2) and all(s == "written" for s in seen)


# --- concurrent delivery (TONGBAN_EXCHANGE_CONCURRENCY) ----------------------------------


class _Recorder:
    """Stands in front of a node's app in `hosts`: records every inbox POST as (message
    id, type, payload, HTTP status); answers `fail[id]` itself instead of forwarding; and
    holds the first `meet` requests until they are all in flight at once, which only a
    dispatcher with that many messages on the wire gets past."""

    def __init__(self, app: Any, meet: int = 0, fail: dict[str, int] | None = None) -> None:
        import threading

        self.app, self.fail = app, fail or {}
        self.seen: list[tuple[str, str, dict[str, Any], int]] = []
        self.lock = threading.Lock()
        self.meet, self.arrived = meet, 0
        self.barrier = threading.Barrier(meet) if meet > 1 else None

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        import httpx

        env = json.loads(kwargs["content"])
        with self.lock:
            self.arrived += 1
            wait = self.barrier is not None and self.arrived <= self.meet
        if wait:
            assert self.barrier is not None
            self.barrier.wait(timeout=20)  # BrokenBarrierError: not concurrent
        if env["id"] in self.fail:
            r: Any = httpx.Response(self.fail[env["id"]], json={"type": "test/unavailable"})
        else:
            r = self.app.request(method, url, **kwargs)
        with self.lock:
            self.seen.append((env["id"], env["type"], env["payload"], r.status_code))
        return r


def _dispatch(node: Any, concurrency: int, backoff: tuple[float, ...] = (0.0,)) -> int:
    # One message a request: the lanes of a node that takes no batches (test_batch.py
    # has the batches).
    node.remote.batch = 1
    return exchange.dispatch_pending(
        node.factory,
        node.settings.served_jurisdictions,
        remote=node.remote,
        max_attempts=node.settings.exchange_max_attempts,
        backoff=backoff,
        concurrency=concurrency,
    )


def _pings(node: Any, source: str, target: str, n: int) -> list[uuid.UUID]:
    with node.session() as s:
        ids = [exchange.send(s, exchange.PING, source, target, {"i": i}).id for i in range(n)]
        s.commit()
    return ids


def test_ordering_keys_follow_what_a_message_is_about() -> None:
    mid = uuid.uuid4()
    key = exchange.ordering_key
    assert key("case.forwarded", {"number": "N1", "id": "x"}, mid) == "case:N1"
    assert key("case.status_changed", {"number": "N1", "seq": 3}, mid) == "case:N1"
    assert key("evidence.consent_recorded", {"case_number": "N1"}, mid) == "case:N1"
    assert key("ticket.event", {"number": "N1", "seq": 2}, mid) == "ticket:N1"
    assert key("licence.keys_published", {"jurisdiction": "310000"}, mid) == "licence:310000"
    assert key("licence.status_list_published", {"jurisdiction": "310000"}, mid) == (
        "licence:310000"
    )
    assert key("evidence.answered", {"request_id": "r"}, mid) == "evidence:r"
    # A type's own declaration (kernel.replication Copies(lane=...)) comes first.
    importlib.import_module("tongban.emergency.copies")  # declares the aid lanes
    for t in ("emergency.request.shared", "emergency.commitment.changed"):
        assert key(t, {"request_id": "r", "number": "N1"}, mid) == "aid:r"
    assert key(exchange.PING, {"number": "N1"}, mid) == f"message:{mid}"


def test_a_concurrent_pass_delivers_every_message_exactly_once(
    tools: Any, fed: dict[str, Any], hosts: Any
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    cases = [tools.submit(a)[0] for _ in range(2)]  # case.forwarded, materials enriched
    pings = _pings(a, "340000", "320000", 10)
    (local,) = _pings(a, "340000", "310000", 1)  # A serves 310000 itself
    remote_ids = {str(m.id) for m in a.outbox(status="pending")} - {str(local)}
    assert len(remote_ids) == 12
    rec = hosts.apps[b.host] = _Recorder(hosts.apps[b.host], meet=3)

    assert _dispatch(a, concurrency=4) == 13
    assert sorted(r[0] for r in rec.seen) == sorted(remote_ids)  # each posted once
    assert all(r[3] == 200 for r in rec.seen)
    assert {m.status for m in a.outbox()} == {"delivered"}
    with b.session() as s:
        inbox = set(s.scalars(select(InboxMessage.id).where(InboxMessage.id.in_(pings))))
    assert inbox == set(pings)
    for case in cases:  # the materials went with them (enriched on the worker threads)
        copy = tools.stored_case(b, case.number)
        assert copy is not None and len(copy.attachments) == 1
    assert _dispatch(a, concurrency=4) == 0 and len(rec.seen) == 12


def test_a_case_s_status_changes_arrive_in_order_beside_other_messages(
    tools: Any, fed: dict[str, Any], hosts: Any
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    case, _ = tools.submit(a)
    tools.drain(a, b)
    tools.deliver_case(b, case.id)
    _pings(b, "320000", "340000", 6)
    rec = hosts.apps[a.host] = _Recorder(hosts.apps[a.host], meet=2)

    assert _dispatch(b, concurrency=4) == 11  # all in one pass: nothing waits for a retry
    statuses = [r for r in rec.seen if r[1] == "case.status_changed"]
    assert [r[2]["seq"] for r in statuses] == [3, 4, 5, 6, 7]
    assert [r[3] for r in rec.seen].count(409) == 0 and len(rec.seen) == 11
    mine = tools.stored_case(a, case.number)
    assert mine is not None and mine.state == "delivered" and len(mine.events) == 7
    assert {m.status for m in b.outbox()} == {"delivered"}


def test_concurrent_failures_back_off_and_go_dead_as_before(
    tools: Any, fed: dict[str, Any], hosts: Any
) -> None:
    from datetime import UTC, datetime, timedelta

    a, b = fed["node-a"], fed["node-b"]
    failing = _pings(a, "340000", "320000", 3)
    passing = _pings(a, "340000", "320000", 2)
    with a.session() as s:
        refused = exchange.send(s, "no.such.type", "340000", "320000", {"x": 1}).id
        s.commit()
    rec = hosts.apps[b.host] = _Recorder(
        hosts.apps[b.host], meet=2, fail={str(i): 503 for i in failing}
    )
    before = datetime.now(UTC)
    assert _dispatch(a, concurrency=4, backoff=(30.0,)) == 2
    for msg_id in failing:  # retried later, with back-off
        m = a.outbox(id=msg_id)[0]
        assert m.status == "pending" and m.attempts == 1 and "HTTP 503" in (m.last_error or "")
        assert m.next_attempt_at >= before + timedelta(seconds=29)
        assert m.next_attempt_at < before + timedelta(seconds=exchange.LEASE_SECONDS)
    r = a.outbox(id=refused)[0]  # a permanent refusal: dead at once
    assert r.status == "dead" and r.attempts == 1 and "HTTP 403" in (r.last_error or "")
    assert all(a.outbox(id=i)[0].status == "delivered" for i in passing)

    rec.barrier = None
    for _ in range(a.settings.exchange_max_attempts - 1):
        for msg_id in failing:
            _reset_due(a, msg_id)
        assert _dispatch(a, concurrency=4) == 0
    for msg_id in failing:
        m = a.outbox(id=msg_id)[0]
        assert m.status == "dead" and m.attempts == 3 and m.dead_at is not None
    with a.session() as s:
        assert {d.id for d in exchange.dead_letters(s)} == {*failing, refused}
    assert [x[0] for x in rec.seen].count(str(failing[0])) == 3
