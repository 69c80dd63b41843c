"""Batches (issue 14): the sender posts a node's messages in one request, each signed on
its own; the receiver verifies each alone and applies them in one transaction, each in
a savepoint. Re-delivery changes nothing, a poisoned or forged message is answered alone
and the others stay applied, limits are problems, a peer without batches gets the
messages one by one, and a lane's messages still arrive in order. Two nodes: A serves
上海 310000 and 安徽 340000, B 江苏 320000 and 浙江 330000."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select, text

from tongban.audit import service as audit
from tongban.cases.models import Case
from tongban.crypto.signing import Alg, generate
from tongban.exchange import api
from tongban.exchange import service as exchange
from tongban.exchange.models import InboxMessage, OutboxMessage
from tongban.exchange.transport import encode_batch, signed_item


def _inbox(node: Any) -> set[str]:
    with node.session() as s:
        return {str(i) for i in s.scalars(select(InboxMessage.id))}


def _pings(node: Any, source: str, target: str, n: int, **extra: Any) -> list[uuid.UUID]:
    with node.session() as s:
        ids = [
            exchange.send(s, exchange.PING, source, target, {"note": f"p{i}", **extra}).id
            for i in range(n)
        ]
        s.commit()
    return ids


def _post_batch(hosts: Any, receiver: Any, items: list[dict[str, Any]]) -> Any:
    url = f"http://{receiver.host}/exchange/v1/inbox/batch"
    return hosts.apps[receiver.host].post(
        url, content=encode_batch(items), headers={"Content-Type": "application/json"}
    )


def _inbox_uri(node: Any) -> str:
    return f"http://{node.host}/exchange/v1/inbox"


class _Front:
    """Stands in front of a node's app in `hosts`: records every request (path, and the
    message ids and types it carried, in order) and answers `/inbox/batch` with 404
    when `batches` is False, as a node of an earlier release does."""

    def __init__(self, app: Any, *, batches: bool = True) -> None:
        self.app, self.batches = app, batches
        self.requests: list[tuple[str, list[tuple[str, str, dict[str, Any]]], int]] = []
        self.lock = threading.Lock()

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        path = httpx.URL(url).path
        data = json.loads(kwargs["content"])
        bodies = [json.loads(m["body"]) for m in data["messages"]] if "messages" in data else [data]
        carried = [(b["id"], b["type"], b["payload"]) for b in bodies]
        if path.endswith("/batch") and not self.batches:
            r: Any = httpx.Response(404, json={"detail": "Not Found"})
        else:
            r = self.app.request(method, url, **kwargs)
        with self.lock:
            self.requests.append((path, carried, r.status_code))
        return r

    def paths(self) -> list[str]:
        return [p.rsplit("/", 1)[-1] for p, _c, _s in self.requests]


def test_a_pass_posts_one_batch_and_applies_every_message_once(
    tools: Any, fed: dict[str, Any], hosts: Any
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    cases = [tools.submit(a)[0] for _ in range(2)]  # case.forwarded, materials enriched
    pings = _pings(a, "340000", "320000", 10)
    _pings(a, "340000", "310000", 1)  # A serves 310000 itself: local, not in the batch
    front = hosts.apps[b.host] = _Front(hosts.apps[b.host])

    assert a.dispatch() == 13
    assert front.paths() == ["batch"]  # one request for the twelve
    (_path, carried, status) = front.requests[0]
    assert status == 200 and len(carried) == 12
    assert {m.status for m in a.outbox()} == {"delivered"}
    assert {str(p) for p in pings} <= _inbox(b)
    for case in cases:  # the case copies, with their materials
        copy = tools.stored_case(b, case.number)
        assert copy is not None and len(copy.attachments) == 1
    # Still in the audit chain as every applied message is.
    with b.session() as s:
        kinds = [e.kind for e in audit.about(s, f"message:{pings[0]}")]
    assert kinds == ["message.applied"]
    # The copies' receipts came back to A (what B's handler sent on), in a batch too.
    back = hosts.apps[a.host] = _Front(hosts.apps[a.host])
    assert b.dispatch() >= 2 and back.paths() == ["batch"]
    assert len(front.requests) == 1


def test_a_pass_signs_its_batch_from_the_claim_without_reading_the_rows_again(
    tools: Any, fed: dict[str, Any], hosts: Any
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    case = tools.submit(a)[0]  # case.forwarded: its materials are added when it leaves
    pings = _pings(a, "340000", "320000", 5)
    front = hosts.apps[b.host] = _Front(hosts.apps[b.host])
    on_outbox: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "outbox_message" in statement:
            on_outbox.append(statement.split()[0].upper())

    event.listen(a.engine, "before_cursor_execute", record)
    try:
        assert a.dispatch() == 6
    finally:
        event.remove(a.engine, "before_cursor_execute", record)
    # The claim (UPDATE … RETURNING what the envelopes need) and the outcomes' one UPDATE:
    # no read of the claimed rows in between.
    assert on_outbox == ["UPDATE", "UPDATE"]
    (_path, carried, status) = front.requests[0]
    assert status == 200 and len(carried) == 6
    assert {str(p) for p in pings} <= {c[0] for c in carried}
    assert {m.status for m in a.outbox()} == {"delivered"}
    assert {str(p) for p in pings} <= _inbox(b)
    copy = tools.stored_case(b, case.number)  # the payload completed on the way out
    assert copy is not None and len(copy.attachments) == 1


def test_a_failure_recorded_late_leaves_a_delivered_message_delivered(
    fed: dict[str, Any],
) -> None:
    a = fed["node-a"]
    (msg_id,) = _pings(a, "340000", "320000", 1)
    with a.session() as s:  # delivered by a worker that took it after a lease ran out
        s.get_one(OutboxMessage, msg_id).status = "delivered"
        s.commit()
    exchange._record_failure(a.factory, msg_id, "HTTP 503 from node-b", dead=True)
    (msg,) = [m for m in a.outbox() if m.id == msg_id]
    assert (msg.status, msg.attempts, msg.last_error) == ("delivered", 0, None)


def test_the_same_batch_twice_applies_once(tools: Any, fed: dict[str, Any], hosts: Any) -> None:
    a, b = fed["node-a"], fed["node-b"]
    case, _ = tools.submit(a)
    (fwd,) = a.outbox(type="case.forwarded")
    with a.session() as s:
        msg = s.get(OutboxMessage, fwd.id)
        envs = [exchange.envelope_of(s, msg, a.id)]  # with its materials, as sent
    envs += [
        tools.envelope(exchange.PING, "310000", "320000", a.id, {"note": str(i)}) for i in (1, 2)
    ]
    key = tools.signing_key(a)
    items = [signed_item(env, key, _inbox_uri(b)) for env in envs]
    inbox_before = len(_inbox(b))

    first = _post_batch(hosts, b, items)
    assert first.status_code == 200, first.text
    assert [r["status"] for r in first.json()["results"]] == ["applied"] * 3
    again = _post_batch(hosts, b, items)  # a re-delivery: the sender never heard the answer
    assert [r["status"] for r in again.json()["results"]] == ["already applied"] * 3
    assert [r["id"] for r in again.json()["results"]] == [e["id"] for e in envs]
    assert len(_inbox(b)) == inbox_before + 3
    with b.session() as s:
        copies = s.scalar(select(func.count()).select_from(Case).where(Case.number == case.number))
    assert copies == 1
    # The same message twice within one batch: applied once.
    twice = _post_batch(hosts, b, [items[1], items[1]])
    assert [r["status"] for r in twice.json()["results"]] == ["already applied"] * 2


def test_a_poisoned_message_is_retried_alone_and_a_refused_one_goes_dead(
    fed: dict[str, Any], hosts: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handler failing in the middle of a batch (here a statement the database refuses,
    which on PostgreSQL aborts the transaction but for the savepoint) takes back only its
    own message: the others stay applied, it is retried with its error recorded; a
    message the receiver refuses for good is dead at once."""
    a, b = fed["node-a"], fed["node-b"]
    on_ping = exchange._handlers[exchange.PING]

    def poisoned(session: Any, payload: dict[str, Any], msg: Any) -> None:
        if payload.get("note") == "p1":
            session.execute(text("SELECT no_such_column FROM inbox_message"))
        on_ping(session, payload, msg)

    monkeypatch.setitem(exchange._handlers, exchange.PING, poisoned)
    ok0, bad, ok2 = _pings(a, "340000", "320000", 3)
    with a.session() as s:  # well signed, but not a case.status_changed payload
        refused = exchange.send(s, "case.status_changed", "340000", "320000", {"number": "x"}).id
        s.commit()
    (ok3,) = _pings(a, "340000", "320000", 1, extra="later")
    front = hosts.apps[b.host] = _Front(hosts.apps[b.host])

    assert a.dispatch() == 3
    assert front.paths() == ["batch"]
    inbox = _inbox(b)
    assert {str(ok0), str(ok2), str(ok3)} <= inbox
    assert str(bad) not in inbox and str(refused) not in inbox
    by_id = {m.id: m for m in a.outbox()}
    assert {by_id[i].status for i in (ok0, ok2, ok3)} == {"delivered"}
    poisoned_row = by_id[bad]
    assert (poisoned_row.status, poisoned_row.attempts) == ("pending", 1)
    assert "handler-failed" in (poisoned_row.last_error or "")
    assert "no_such_column" in (poisoned_row.last_error or "")
    assert by_id[refused].status == "dead" and "bad-payload" in (by_id[refused].last_error or "")

    # Cured, the poisoned message goes through on its retry (the back-off is 0 here).
    monkeypatch.setitem(exchange._handlers, exchange.PING, on_ping)
    assert a.dispatch() == 1
    assert str(bad) in _inbox(b)


def test_a_forged_or_smuggled_message_in_a_batch_is_refused_alone(
    tools: Any, fed: dict[str, Any], hosts: Any
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    key, stranger = tools.signing_key(a), generate(Alg.EDDSA)
    uri = _inbox_uri(b)

    def ping(source: str = "310000") -> dict[str, Any]:
        return tools.envelope(exchange.PING, source, "320000", a.id, {"note": "x"})

    good1, good2 = ping(), ping()
    tampered = signed_item(ping(), key, uri)
    tampered["body"] = tampered["body"].replace('"note":"x"', '"note":"y"')
    items = [
        signed_item(good1, key, uri),
        signed_item(ping(), stranger, uri),  # not A's key
        tampered,  # the body is not what A signed
        # A message for a jurisdiction A does not serve, signed by A: smuggled.
        signed_item(ping(source="320000"), key, uri),
        # Signed for another URI (the batch's, not the inbox's).
        signed_item(ping(), key, uri + "/batch"),
        signed_item(good2, key, uri),
    ]
    r = _post_batch(hosts, b, items)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["applied"] + ["refused"] * 4 + ["applied"]
    reasons = [x["problem"]["type"].rsplit("/", 1)[-1] for x in results[1:5]]
    assert reasons == [
        "unknown-key",
        "digest-mismatch",
        "sender-not-serving-source",
        "bad-signature",
    ]
    assert [x["problem"]["status"] for x in results[1:5]] == [401, 400, 403, 401]
    inbox = _inbox(b)
    assert good1["id"] in inbox and good2["id"] in inbox
    assert not {json.loads(i["body"])["id"] for i in items[1:5]} & inbox


def test_limits_and_malformed_batches_are_problems(
    tools: Any, fed: dict[str, Any], hosts: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    key, uri = tools.signing_key(a), _inbox_uri(b)
    items = [
        signed_item(tools.envelope(exchange.PING, "310000", "320000", a.id, {}), key, uri)
        for _ in range(3)
    ]
    before = _inbox(b)
    monkeypatch.setattr(api, "MAX_BATCH_MESSAGES", 2)
    r = _post_batch(hosts, b, items)
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("exchange/batch-too-large") and "2" in r.json()["detail"]
    monkeypatch.setattr(api, "MAX_BATCH_MESSAGES", 500)
    monkeypatch.setattr(api, "MAX_BATCH_BYTES", 1000)
    r = _post_batch(hosts, b, items)
    assert r.status_code == 413 and r.json()["type"].endswith("exchange/batch-too-large")
    monkeypatch.setattr(api, "MAX_BATCH_BYTES", 64 * 1024 * 1024)
    url = f"http://{b.host}/exchange/v1/inbox/batch"
    for body in (b"not json", b'{"messages": []}', b'{"messages": [{"body": 1}]}', b"[]"):
        r = hosts.apps[b.host].post(url, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (body, r.text)
        assert r.json()["type"].endswith("exchange/bad-batch")
    assert _inbox(b) == before  # nothing written by any of them
    card = hosts.apps[b.host].get(f"http://{b.host}/exchange/v1/node").json()
    assert card["batch"]["path"] == "/exchange/v1/inbox/batch"
    assert card["batch"]["max_messages"] == 500


def test_a_node_without_batches_gets_the_messages_one_by_one(
    fed: dict[str, Any], hosts: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    monkeypatch.setattr(exchange, "_no_batches", {})
    first = _pings(a, "340000", "320000", 3)
    front = hosts.apps[b.host] = _Front(hosts.apps[b.host], batches=False)

    assert a.dispatch() == 3
    assert front.paths() == ["batch", "inbox", "inbox", "inbox"]
    assert {str(i) for i in first} <= _inbox(b)
    # Remembered: the next pass does not try a batch again.
    later = _pings(a, "340000", "320000", 2)
    assert a.dispatch() == 2
    assert front.paths()[4:] == ["inbox", "inbox"]
    assert {str(i) for i in later} <= _inbox(b)
    assert {m.status for m in a.outbox()} == {"delivered"}


@pytest.mark.parametrize("batch", [100, 2], ids=["one-batch", "batches-of-2"])
def test_a_case_s_status_changes_arrive_in_order_in_batches(
    tools: Any, fed: dict[str, Any], hosts: Any, batch: int
) -> None:
    """One case's steps are one lane: in one batch, or cut over several batches of one
    stream (sent one after another) while other streams run beside it."""
    a, b = fed["node-a"], fed["node-b"]
    case, _ = tools.submit(a)
    tools.drain(a, b)
    tools.deliver_case(b, case.id)
    _pings(b, "320000", "340000", 6)
    front = hosts.apps[a.host] = _Front(hosts.apps[a.host])
    b.remote.batch = batch

    delivered = exchange.dispatch_pending(
        b.factory,
        b.settings.served_jurisdictions,
        remote=b.remote,
        max_attempts=3,
        backoff=(0.0,),
        concurrency=4,
    )
    assert delivered == 11  # all in one pass: nothing waited for a retry
    assert all(p.endswith("/batch") and st == 200 for p, _c, st in front.requests)
    assert len(front.requests) == (1 if batch > 2 else 6)
    carried = [m for _p, c, _s in front.requests for m in c]
    statuses = [m for m in carried if m[1] == "case.status_changed"]
    assert [m[2]["seq"] for m in statuses] == [3, 4, 5, 6, 7]
    mine = tools.stored_case(a, case.number)
    assert mine is not None and mine.state == "delivered" and len(mine.events) == 7
    assert {m.status for m in b.outbox()} == {"delivered"}
