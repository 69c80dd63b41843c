"""A receiver that finds a gap in a jurisdiction's published cells asks the publisher for
a full snapshot (two nodes in one process, SQLite and PostgreSQL; node A serves 上海 and
安徽, node B 江苏 and 浙江 and publishes 江苏's cells): a lost delta makes A ask once —
the delta showing the gap is dropped, a second one waits — and B's answer, a full
snapshot to A only, repairs A's copy without waiting for the N-th round; B's next round
is then full. Requests are hostile input: refused from this node itself, about a
jurisdiction the asking node serves or B does not publish, and more than once per
asking node and jurisdiction in the answering interval (429: retried later)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select

from integration.dashboard.test_delta_publication import (
    JS,
    _copy,
    _own,
    _plain,
    _publish,
    _refresh,
    _seed,
)
from tongban.dashboard import cells, federation
from tongban.dashboard.domain import Key, Value
from tongban.dashboard.models import DashStamp
from tongban.exchange import service as exchange
from tongban.exchange.models import OutboxMessage
from tongban.kernel.numbering import NumberCounter


@pytest.fixture(autouse=True)
def _fresh(fed: dict[str, Any]) -> Iterator[None]:
    """No memory of what was published, and no request asked or answered before (the
    databases live for the module)."""
    federation.forget_sent()
    for node in fed.values():
        with node.session() as s:
            s.execute(delete(DashStamp))
            s.commit()
    yield
    federation.forget_sent()


def _outbox(node: Any, msg_type: str) -> list[OutboxMessage]:
    with node.session() as s:
        q = select(OutboxMessage).where(OutboxMessage.type == msg_type)
        return list(s.scalars(q.order_by(OutboxMessage.created_at)))


def _lose_pending(b: Any) -> None:
    """B's pending publications never reach A."""
    with b.session() as s:
        for m in s.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending")):
            if m.type == federation.CELLS_PUBLISHED:
                s.delete(m)
        s.commit()


def _change(b: Any, i: int) -> dict[str, Any]:
    """One more decided case in an older cell of 江苏 on B, and B's publication (not
    delivered: the caller decides)."""
    older = date.today() - timedelta(days=60 - i)
    with b.session() as s:
        key = Key("cases.decided", older, "320500", "320100", JS, "online")
        cells.store(s, {key: Value(1, 1, 0, {1 + i: 1})}, "")
        s.commit()
    return _publish(b)


def _by_seq(b: Any, seq: int) -> OutboxMessage:
    return next(m for m in _outbox(b, federation.CELLS_PUBLISHED) if m.payload["seq"] == seq)


def test_a_gap_asks_once_and_the_answer_repairs_the_copy(tools: Any, fed: dict[str, Any]) -> None:
    a, b = fed["node-a"], fed["node-b"]
    _seed(b)
    _refresh(b)
    full = _publish(b)
    tools.drain(a, b)
    assert _copy(a) == _plain(_own(b))

    lost = _change(b, 0)
    _lose_pending(b)
    late = _change(b, 1)
    later = _change(b, 2)
    assert late["base"] == lost["seq"] and later["base"] == late["seq"]
    held = _copy(a)

    b.dispatch()  # B's two deltas reach A, which holds the full snapshot only
    wanted = _outbox(a, federation.SNAPSHOT_WANTED)
    assert len(wanted) == 1  # asked once, although two deltas showed the gap
    assert wanted[0].target_jurisdiction == JS
    assert wanted[0].payload == {"jurisdiction": JS, "held": full["seq"], "seen": late["seq"]}
    # The first is dropped (the snapshot asked for is numbered after it), the second waits.
    assert _by_seq(b, late["seq"]).status == "delivered"
    waiting = _by_seq(b, later["seq"])
    assert waiting.status == "pending" and "out-of-order" in (waiting.last_error or "")
    assert _copy(a) == held  # nothing applied on a version A does not hold

    tools.drain(a, b)  # the request goes to B, B's answer comes back
    answers = [m for m in _outbox(b, federation.CELLS_PUBLISHED) if m.payload["seq"] > later["seq"]]
    assert len(answers) == 1  # to A only (the federation's one other node here), and full
    answer = answers[0].payload
    assert answer.get("base") is None and len(answer["rows"]) == len(_own(b))
    assert answers[0].target_jurisdiction == wanted[0].source_jurisdiction
    assert federation.full_every() > 3  # repaired without waiting for the N-th round
    assert _copy(a) == _plain(_own(b))
    assert _by_seq(b, later["seq"]).status == "delivered"  # stale now, dropped
    assert len(_outbox(a, federation.SNAPSHOT_WANTED)) == 1  # no second request

    # The other nodes never saw the answer's number: B's next round is full.
    after = _change(b, 3)
    assert after.get("base") is None and after["seq"] == answer["seq"] + 1
    tools.drain(a, b)
    assert _copy(a) == _plain(_own(b))


def test_a_copy_missing_asks_for_a_snapshot(tools: Any, fed: dict[str, Any]) -> None:
    """A holds nothing of 江苏 (the full snapshot lost): the first delta makes it ask."""
    a, b = fed["node-a"], fed["node-b"]
    _seed(b)
    _refresh(b)
    with a.session() as s:  # A's copy and the version it holds: gone
        s.execute(delete(NumberCounter).where(NumberCounter.scope == f"in:dashboard.cells:{JS}"))
        s.commit()
    with a.session() as s:
        cells.forget_origin(s, JS)
        s.commit()
    _publish(b)
    _lose_pending(b)
    _change(b, 0)
    tools.drain(a, b)
    wanted = _outbox(a, federation.SNAPSHOT_WANTED)
    assert [m.payload["held"] for m in wanted] == [0]
    assert _copy(a) == _plain(_own(b))


def test_asking_again_waits_for_the_interval(
    tools: Any, fed: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    _seed(b)
    _refresh(b)
    _publish(b)
    tools.drain(a, b)
    monkeypatch.setattr(federation, "answer_seconds", lambda: 0)
    for round_ in range(2):
        _change(b, round_)
        _lose_pending(b)
        _change(b, round_ + 5)
        tools.drain(a, b)
    # Asked within ask_seconds(): the second gap waits (its delta pending, no request).
    assert len(_outbox(a, federation.SNAPSHOT_WANTED)) == 1
    assert _copy(a) != _plain(_own(b))
    monkeypatch.setattr(federation, "ask_seconds", lambda: 0)  # the interval is over
    tools.drain(a, b)
    assert len(_outbox(a, federation.SNAPSHOT_WANTED)) == 2
    assert _copy(a) == _plain(_own(b))


def _ask(a: Any, payload: dict[str, Any], target: str = JS) -> Any:
    """A request from A's outbox (signed by A on the way), as a peer could forge it."""
    with a.session() as s:
        mid = exchange.send(s, federation.SNAPSHOT_WANTED, "310000", target, payload).id
        s.commit()
        return mid


def _status(node: Any, mid: Any) -> tuple[str, str]:
    with node.session() as s:
        m = s.get(OutboxMessage, mid)
        assert m is not None
        return m.status, m.last_error or ""


def test_requests_are_checked_and_rate_limited(tools: Any, fed: dict[str, Any]) -> None:
    a, b = fed["node-a"], fed["node-b"]
    _seed(b)
    _refresh(b)
    published = len(_outbox(b, federation.CELLS_PUBLISHED))
    ok = {"jurisdiction": JS, "held": 0, "seen": 1}
    first = _ask(a, ok)
    a.dispatch()
    assert _status(a, first)[0] == "delivered"
    # Again within answer_seconds(): 429, retried later; B answered once.
    again = _ask(a, ok)
    a.dispatch()
    status, error = _status(a, again)
    assert status == "pending" and "429" in error and "too-many-requests" in error
    # About another jurisdiction than the one the message is addressed to; a payload
    # outside the schema: refused for good.
    other = _ask(a, {**ok, "jurisdiction": "330000"})
    bad = _ask(a, {**ok, "held": -1})
    extra = _ask(a, {**ok, "note": "x"})
    a.dispatch()
    for mid in (other, bad, extra):
        status, error = _status(a, mid)
        assert status == "dead" and ("bad-payload" in error or "422" in error), error
    answers = _outbox(b, federation.CELLS_PUBLISHED)[published:]
    assert len(answers) == 1 and answers[0].target_jurisdiction == "310000"
    assert answers[0].payload.get("base") is None


def test_the_senders_right(fed: dict[str, Any]) -> None:
    """The authoriser alone (the inbox lets no message through to a node that does not
    serve its target): from this node, from a node serving the jurisdiction itself,
    about a jurisdiction this node does not publish."""
    b = fed["node-b"]
    p = federation.SnapshotWanted(jurisdiction=JS, held=0, seen=1)
    peer = exchange.Sender("node-a", frozenset({"310000", "340000"}), "310000", JS)
    with b.session() as s:
        federation.authorise_wanted(s, p, peer)  # the one that passes
        cases = [
            (exchange.Sender(None, frozenset({"*"}), JS, JS), p, 403),
            (exchange.Sender("node-c", frozenset({JS}), JS, JS), p, 403),
            (
                exchange.Sender("node-a", frozenset({"310000"}), "310000", "340000"),
                federation.SnapshotWanted(jurisdiction="340000", held=0, seen=1),
                404,
            ),
            (
                exchange.Sender("node-a", frozenset({"310000"}), "310000", "999999"),
                federation.SnapshotWanted(jurisdiction="999999", held=0, seen=1),
                404,
            ),
            (exchange.Sender("node-a", frozenset({"310000"}), "310000", "330000"), p, 422),
        ]
        for sender, payload, status in cases:
            with pytest.raises(exchange.Refused) as err:
                federation.authorise_wanted(s, payload, sender)
            assert err.value.status == status
            assert any("\u4e00" <= ch <= "\u9fff" for ch in err.value.detail)  # Chinese
