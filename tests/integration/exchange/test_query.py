"""Synchronous signed queries between two nodes in one process (A serves 上海 310000 and
安徽 340000, B 江苏 320000 and 浙江 330000), over the real signed HTTP path: an answer
within the deadline, a refusal with its reason, the asker's right checked per record, a
node down or slow, a forged, unsigned or replayed exchange refused — and every query
recorded on both nodes, also when the asker's transaction rolls back."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tongban.crypto.signing import Alg, generate
from tongban.errors import ValidationFailed
from tongban.exchange import query
from tongban.exchange.contracts import Sender
from tongban.exchange.models import ExchangeQuery
from tongban.exchange.schema import Payload, RegionCode, ShortText
from tongban.exchange.transport import signed_request

ECHO = "test.echo"


class EchoAsk(Payload):
    #: The jurisdiction the asked-about record belongs to (the asker must serve it).
    jurisdiction: RegionCode
    subject: ShortText = ""
    note: ShortText = ""


class EchoAnswer(Payload):
    echoed: ShortText
    answered_for: RegionCode


def _asker_serves_the_record(_session: Any, payload: EchoAsk, sender: Sender) -> None:
    sender.require(payload.jurisdiction, "查询所涉辖区")


@query.query_handler(
    ECHO,
    schema=EchoAsk,
    answer_schema=EchoAnswer,
    authorise=_asker_serves_the_record,
    subject=lambda p: p.subject or None,
)
def _echo(_session: Any, payload: EchoAsk, ctx: query.QueryContext) -> EchoAnswer:
    if payload.note == "refuse":
        raise ValidationFailed(
            "备注不被接受", type="test-refused", errors=[{"field": "note", "message": "不行"}]
        )
    return EchoAnswer(echoed=payload.note, answered_for=ctx.sender.target_jurisdiction)


class Tamper(httpx.BaseTransport):
    """Routes like `Hosts`, and can delay or alter what comes back."""

    def __init__(self, hosts: Any) -> None:
        self.hosts = hosts
        self.delay = 0.0
        self.alter: Any = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.delay:
            time.sleep(self.delay)
        r = self.hosts.handle_request(request)
        return self.alter(request, r) if self.alter else r


@pytest.fixture
def nodes(fed: dict[str, Any], hosts: Any) -> Iterator[tuple[Any, Any, Tamper]]:
    """A and B with their queries routed in-process (B's through a transport the test can
    slow down or make lie)."""
    a, b = fed["node-a"], fed["node-b"]
    tamper = Tamper(hosts)
    plain, lying = httpx.Client(transport=hosts), httpx.Client(transport=tamper)
    query.install_client(a.id, plain)
    query.install_client(b.id, lying)
    yield a, b, tamper
    query.install_client(a.id, None)
    query.install_client(b.id, None)
    plain.close()
    lying.close()


def _ask(node: Any, target: str, **payload: Any) -> Any:
    payload.setdefault("jurisdiction", "320000")
    with node.session() as s:
        try:
            got = query.ask(s, ECHO, source="320000", target=target, payload=payload)
        except query.QueryFailed:
            s.rollback()
            raise
        s.commit()
        return got


def _rows(node: Any) -> list[ExchangeQuery]:
    with node.session() as s:
        return list(s.scalars(select(ExchangeQuery).order_by(ExchangeQuery.at)))


def _last(node: Any) -> ExchangeQuery:
    rows = _rows(node)
    assert rows, f"no query recorded on {node.id}"
    return rows[-1]


def test_a_query_is_answered_across_nodes_and_recorded_on_both(nodes: Any) -> None:
    a, b, _ = nodes
    got = _ask(b, "340000", note="你好", subject="340102199003070011")
    assert got == EchoAnswer(echoed="你好", answered_for="340000")
    asked, answered = _last(b), _last(a)
    assert asked.id == answered.id
    assert (asked.role, asked.answering_node, asked.outcome) == ("asked", "node-a", "answered")
    assert (answered.role, answered.asking_node, answered.outcome) == (
        "answered",
        "node-b",
        "answered",
    )
    assert (answered.asking_jurisdiction, answered.answering_jurisdiction) == ("320000", "340000")
    # The person is a keyed digest, never the ID number.
    assert answered.subject_digest and len(answered.subject_digest) == 64
    assert "340102199003070011" not in answered.subject_digest


def test_a_query_for_a_jurisdiction_served_here_is_answered_in_process(nodes: Any) -> None:
    a, b, tamper = nodes
    tamper.alter = lambda req, r: pytest.fail("no HTTP call for a target served here")
    before = len(_rows(a))
    got = _ask(b, "330000", note="本地")
    assert got.answered_for == "330000"
    row = _last(b)
    assert (row.role, row.asking_node, row.answering_node, row.outcome) == (
        "local",
        None,
        None,
        "answered",
    )
    assert len(_rows(a)) == before


def test_a_refusal_keeps_its_reason_and_is_recorded_although_the_asker_rolls_back(
    nodes: Any,
) -> None:
    a, b, _ = nodes
    with pytest.raises(query.QueryRefused) as e:
        _ask(b, "340000", note="refuse")
    assert (e.value.type, e.value.status, e.value.detail) == ("test-refused", 422, "备注不被接受")
    assert e.value.errors == [{"field": "note", "message": "不行"}]
    asked, answered = _last(b), _last(a)
    assert asked.id == answered.id
    assert (asked.outcome, asked.reason) == ("refused", "test-refused")
    assert (answered.outcome, answered.reason) == ("refused", "test-refused")


def test_a_node_may_not_ask_about_a_record_of_a_jurisdiction_it_does_not_serve(
    nodes: Any,
) -> None:
    a, b, _ = nodes
    with pytest.raises(query.QueryRefused) as e:
        _ask(b, "340000", jurisdiction="310000", note="越权")
    assert (e.value.type, e.value.status) == ("exchange/not-allowed", 403)
    assert "310000" in e.value.detail
    assert (_last(a).outcome, _last(a).reason) == ("refused", "exchange/not-allowed")


def test_a_payload_outside_the_schema_is_refused_before_the_handler(nodes: Any, hosts: Any) -> None:
    a, b, _ = nodes
    # This node never sends one (ask parses its own payload first); a hostile peer does.
    with pytest.raises(ValueError):
        _ask(b, "340000", note="x", extra="未声明的字段")
    body, headers = _signed_query(b, a.host, note="x", extra="未声明的字段")
    r = hosts.apps[a.host].post(f"http://{a.host}{query.PATH}", content=body, headers=headers)
    assert r.status_code == 422
    assert r.json()["type"].endswith("/exchange/bad-payload")
    assert "extra" in r.json()["detail"]
    assert (_last(a).outcome, _last(a).reason) == ("refused", "exchange/bad-payload")


def test_a_node_down_is_unavailable_and_recorded(nodes: Any, hosts: Any) -> None:
    a, b, _ = nodes
    hosts.down.add(a.host)
    with pytest.raises(query.QueryUnavailable) as e:
        _ask(b, "340000", note="在吗")
    assert (e.value.reason, e.value.status) == ("down", 503)
    row = _last(b)
    assert (row.role, row.outcome, row.reason) == ("asked", "unavailable", "down")


def test_a_slow_node_is_unavailable_within_the_deadline(nodes: Any) -> None:
    a, b, tamper = nodes
    tamper.delay = 3.0
    with b.session() as s:
        started = time.monotonic()
        with pytest.raises(query.QueryUnavailable) as e:
            query.ask(
                s,
                ECHO,
                source="320000",
                target="340000",
                payload={"jurisdiction": "320000"},
                timeout_ms=300,
            )
        elapsed = time.monotonic() - started
        s.commit()
    assert e.value.reason == "timeout"
    assert elapsed < 2.0  # the deadline, not the node's 3 s
    assert (_last(b).outcome, _last(b).reason) == ("unavailable", "timeout")


def test_the_deadline_defaults_to_the_setting(nodes: Any) -> None:
    a, b, tamper = nodes
    tamper.delay = 3.0
    before, b.settings.query_timeout_ms = b.settings.query_timeout_ms, 200
    try:
        started = time.monotonic()
        with pytest.raises(query.QueryUnavailable):
            _ask(b, "340000", note="慢")
        assert time.monotonic() - started < 2.0
    finally:
        b.settings.query_timeout_ms = before


def _altered(body: Any = None, drop: tuple[str, ...] = (), resign: Any = None) -> Any:
    def alter(request: httpx.Request, r: httpx.Response) -> httpx.Response:
        headers = {k: v for k, v in r.headers.items() if k.lower() not in drop}
        content = r.content
        if body is not None:
            content = body(content)
        if resign is not None:
            headers = resign(request, content)
        return httpx.Response(r.status_code, headers=headers, content=content)

    return alter


@pytest.mark.parametrize(
    "how",
    ["tampered body", "unsigned", "signed by another key", "answer of another request"],
)
def test_a_forged_or_unsigned_answer_is_refused(nodes: Any, how: str) -> None:
    a, b, tamper = nodes
    other = generate(Alg.EDDSA)

    def lie(content: bytes) -> bytes:
        data = json.loads(content)
        data["answer"]["echoed"] = "伪造"
        return json.dumps(data, ensure_ascii=False).encode()

    def resign_with_other(request: httpx.Request, content: bytes) -> dict[str, str]:
        req_digest = request.headers["content-digest"]
        qid = json.loads(content)["id"]
        return query.sign_answer(
            200, content, "application/json", other, request_digest=req_digest, query_id=qid
        )

    def sign_for_other_request(request: httpx.Request, content: bytes) -> dict[str, str]:
        # The real node's key, but bound to a different request body's digest.
        with a.session() as s:
            from tongban.exchange import service as exchange

            key = exchange.node_key(s, a.id)
        qid = json.loads(content)["id"]
        return query.sign_answer(
            200, content, "application/json", key, request_digest="sha-256=:AAAA:", query_id=qid
        )

    tamper.alter = {
        "tampered body": _altered(body=lie),
        "unsigned": _altered(drop=("signature", "signature-input")),
        "signed by another key": _altered(body=lie, resign=resign_with_other),
        "answer of another request": _altered(resign=sign_for_other_request),
    }[how]
    with pytest.raises(query.QueryUnavailable) as e:
        _ask(b, "340000", note="真")
    assert e.value.reason == "unverified-answer"
    assert (_last(b).outcome, _last(b).reason) == ("unverified", "unverified-answer")


def _signed_query(node: Any, target_host: str, **payload: Any) -> tuple[bytes, dict[str, str]]:
    from tongban.exchange import service as exchange

    env = {
        "id": str(uuid.uuid4()),
        "type": ECHO,
        "source_node": node.id,
        "source_jurisdiction": "320000",
        "target_jurisdiction": "340000",
        "created_at": "2026-11-30T08:00:00+00:00",
        "version": 1,
        "payload": {"jurisdiction": "320000", **payload},
    }
    with node.session() as s:
        key = exchange.node_key(s, node.id)
        s.commit()
    return signed_request(env, key, f"http://{target_host}{query.PATH}")


def test_a_replayed_query_is_refused_and_the_refusal_is_signed(
    nodes: Any, hosts: Any, fed: dict[str, Any]
) -> None:
    a, b, _ = nodes
    body, headers = _signed_query(b, a.host, note="一次")
    url = f"http://{a.host}{query.PATH}"
    first = hosts.apps[a.host].post(url, content=body, headers=headers)
    assert first.status_code == 200, first.text
    again = hosts.apps[a.host].post(url, content=body, headers=headers)
    assert again.status_code == 409
    assert again.json()["type"].endswith("/exchange/replayed")
    from tongban.exchange.federation import load

    node_a = load(a.settings.federation_file).node(a.id)
    query.verify_answer(
        again.status_code,
        again.headers,
        again.content,
        request_digest=headers["Content-Digest"],
        node=node_a,
        query_id=uuid.UUID(json.loads(body)["id"]),
        now=time.time(),
        max_skew=10**9,
    )


def test_an_unsigned_query_is_refused_with_a_signed_problem(nodes: Any, hosts: Any) -> None:
    a, _, _ = nodes
    r = hosts.apps[a.host].post(
        f"http://{a.host}{query.PATH}",
        content=b'{"id": "x"}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/exchange/signature-missing")
    assert r.headers["signature-input"].startswith("tongban=(")


def test_on_sqlite_an_idle_asker_does_not_hold_its_write_lock_across_the_round_trip(
    nodes: Any,
) -> None:
    """Every SQLite transaction takes the write lock at its first statement (BEGIN
    IMMEDIATE): a request asking another node inside it would hold the lock for the round
    trip, and two nodes asking each other would each wait for the other's lock. With
    `release_idle` a transaction that has written nothing is ended first; one that has
    written keeps its lock (its writes must commit together)."""
    a, b, tamper = nodes
    url = b.settings.database_url
    if not url.startswith("sqlite:///"):
        pytest.skip("SQLite's write lock")
    path = url.removeprefix("sqlite:///")
    seen: list[str] = []

    def probe(request: httpx.Request, r: httpx.Response) -> httpx.Response:
        other = sqlite3.connect(path, timeout=0.05, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            seen.append("free")
        except sqlite3.OperationalError:
            seen.append("locked")
        finally:
            other.close()
        return r

    tamper.alter = probe
    ask = {"jurisdiction": "320000", "note": "锁"}
    with b.session() as s:
        s.scalar(select(func.count()).select_from(ExchangeQuery))  # the transaction begins
        assert query.ask(s, ECHO, source="320000", target="340000", payload=ask, release_idle=True)
        # The second ask's transaction has written the first one's record: it keeps its lock.
        query.ask(s, ECHO, source="320000", target="340000", payload=ask, release_idle=True)
        s.commit()
    with b.session() as s:
        s.scalar(select(func.count()).select_from(ExchangeQuery))
        query.ask(s, ECHO, source="320000", target="340000", payload=ask)  # not asked to
        s.commit()
    assert seen == ["free", "locked", "locked"]
    # Both asks of the first session are recorded (the first after its lock was let go).
    assert [r.outcome for r in _rows(b)[-3:]] == ["answered"] * 3
