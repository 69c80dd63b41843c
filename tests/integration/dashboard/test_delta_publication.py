"""Delta publication of the dashboard's cells between two nodes in one process (SQLite
and PostgreSQL): node B (江苏, 浙江) publishes only the cells that changed since its
previous publication, on top of the version it names; node A's copy then equals B's
own cells (and its monthly roll-ups a full recompute of them) after a series of deltas;
a lost delta leaves A's copy as it was until the next full snapshot repairs it (when A
asked for one already: test_delta_snapshot_request.py); forged, replayed or
out-of-order deltas change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tongban.dashboard import cellkey, cells, federation, service
from tongban.dashboard.domain import Key, Value
from tongban.exchange import service as exchange
from tongban.exchange.models import OutboxMessage

JS = "320000"


@pytest.fixture(autouse=True)
def _fresh_memory() -> Iterator[None]:
    federation.forget_sent()  # as after a restart: B's first publication is full
    yield
    federation.forget_sent()


def _refresh(node: Any) -> None:
    with node.session() as s:
        service.refresh(
            s, service.owns_for(node.settings.served_jurisdictions), settle=timedelta(0)
        )
        s.commit()


def _publish(node: Any) -> dict[str, Any]:
    """B publishes; the body of its publication of 江苏 (to A)."""
    with node.session() as s:
        assert federation.publish_all(s) >= 1
        s.commit()
    with node.session() as s:
        msg = s.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.type == federation.CELLS_PUBLISHED,
                OutboxMessage.source_jurisdiction == JS,
            )
            .order_by(OutboxMessage.created_at.desc())
            .limit(1)
        ).one()
        return dict(msg.payload)


def _own(node: Any, monthly: bool = False) -> dict[Key, Value]:
    with node.session() as s:
        return cells.read(s, "", JS, monthly=monthly)


def _copy(node: Any, monthly: bool = False) -> dict[Key, Value]:
    with node.session() as s:
        return {k: v for k, v in cells.read(s, JS, monthly=monthly).items() if _nonzero(v)}


def _nonzero(v: Value) -> bool:
    """Whether a cell holds anything (its histogram without empty buckets, its key read
    modulo 2³² as the noise reads it: a copy holds the keys as published, reduced)."""
    v.hist = {b: c for b, c in (v.hist or {}).items() if c} or None
    v.ckey %= cellkey.MODULUS
    return bool(v.n or v.total or v.extra or v.hist)


def _plain(d: dict[Key, Value]) -> dict[Key, Value]:
    return {k: v for k, v in d.items() if _nonzero(v)}


def _changed(before: dict[Key, Value], after: dict[Key, Value]) -> int:
    return sum(1 for k, v in after.items() if before.get(k) != v)


def _seed(b: Any) -> None:
    """Older cells of 江苏 on B (handling-time histograms among them), as a refresh
    leaves them: most of them do not change between two publications."""
    with b.session() as s:
        if cells.read(s, "", JS).keys() >= _seeded().keys():
            return
        cells.store(s, _seeded(), "")
        s.commit()


def _seeded() -> dict[Key, Value]:
    start = date.today() - timedelta(days=60)
    return {
        Key("cases.decided", start + timedelta(days=i), "320500", "320100", JS, "online"): Value(
            3, 2, 0, {1: 2, 4: 1}
        )
        for i in range(30)
    }


def _step(tools: Any, a: Any, b: Any, i: int = 0) -> tuple[dict[Key, Value], dict[str, Any]]:
    """A case for 苏州 on A, and one more decided case in an older cell of B; B counts
    them and publishes: (B's cells before, the body)."""
    before = _own(b)
    tools.submit(a)
    tools.drain(a, b)
    _refresh(b)
    older = date.today() - timedelta(days=60 - i)
    with b.session() as s:
        key = Key("cases.decided", older, "320500", "320100", JS, "online")
        cells.store(s, {key: Value(1, 1, 0, {1 + i: 1})}, "")
        s.commit()
    return before, _publish(b)


def test_deltas_carry_only_changed_cells_and_keep_the_copy_equal(
    tools: Any, fed: dict[str, Any]
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    _seed(b)
    tools.submit(a)
    tools.drain(a, b)
    _refresh(b)
    first = _publish(b)
    assert first.get("base") is None  # nothing remembered: a full snapshot
    assert len(first["rows"]) == len(_own(b))
    tools.drain(a, b)
    assert _copy(a) == _plain(_own(b))

    for i in range(4):
        before, body = _step(tools, a, b, i)
        after = _own(b)
        # Only the changed cells travel (here 2 of 31 or more), on the publication before.
        assert body["base"] == body["seq"] - 1
        assert 0 < len(body["rows"]) == _changed(before, after) <= 3 < len(after)
        tools.drain(a, b)
        assert _copy(a) == _plain(after)
    with b.session() as s:  # a round in which nothing changed sends nothing
        assert federation.publish_all(s) == 0
        s.commit()
    # After the series, A's copy and its monthly roll-ups are what B holds ...
    assert _copy(a, monthly=True) == _plain(_own(b, monthly=True))
    # ... and what a full snapshot gives (A's copy rebuilt from scratch).
    deltas = _copy(a), _copy(a, monthly=True)
    with b.session() as s:
        federation.forget_sent()
        assert federation.publish_all(s) >= 1
        s.commit()
    tools.drain(a, b)
    assert (_copy(a), _copy(a, monthly=True)) == deltas


def test_a_lost_delta_is_repaired_by_the_next_full_snapshot(
    tools: Any, fed: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    # A asked for a full snapshot already (within ask_seconds): the gap waits for the
    # N-th round (test_delta_snapshot_request.py: a node that may ask).
    monkeypatch.setattr(federation, "ask_snapshot", lambda *args: False)
    _seed(b)
    _refresh(b)
    _publish(b)  # full
    tools.drain(a, b)
    held = _copy(a)

    _, lost = _step(tools, a, b)
    assert lost["base"] == lost["seq"] - 1
    with b.session() as s:  # the delta never reaches A
        for m in s.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending")):
            if m.type == federation.CELLS_PUBLISHED:
                s.delete(m)
        s.commit()
    _, late = _step(tools, a, b)
    assert late["base"] == lost["seq"]
    tools.drain(a, b)
    assert _copy(a) == held  # on a version A does not hold: kept aside, nothing applied
    assert _copy(a) != _plain(_own(b))

    monkeypatch.setattr(federation, "full_every", lambda: 1)  # the N-th round: full
    full = _publish(b)
    assert full.get("base") is None and len(full["rows"]) == len(_own(b))
    tools.drain(a, b)
    assert _copy(a) == _plain(_own(b))


def _send(b: Any, body: dict[str, Any]) -> Any:
    with b.session() as s:
        mid = exchange.send(s, federation.CELLS_PUBLISHED, JS, "310000", body).id
        s.commit()
        return mid


def _status(b: Any, mid: Any) -> str:
    with b.session() as s:
        m = s.get(OutboxMessage, mid)
        assert m is not None
        return m.status


def test_forged_replayed_and_out_of_order_deltas_change_nothing(
    tools: Any, fed: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    monkeypatch.setattr(federation, "ask_snapshot", lambda *args: False)  # asked already
    tools.submit(a)
    tools.drain(a, b)
    _refresh(b)
    full = _publish(b)
    tools.drain(a, b)
    held = _copy(a)
    seq = int(full["seq"])
    row = dict(full["rows"][0])
    big = {**row, "n": int(row["n"]) + 1000}

    def delta(**kw: Any) -> dict[str, Any]:
        return {"jurisdiction": JS, "as_of": full["as_of"], "rows": [big], **kw}

    # A sequence that does not follow its base: refused, nothing applied.
    bad = _send(b, delta(seq=seq + 3, base=seq))
    # A histogram bucket out of range, and a negative count: refused.
    hist = _send(b, delta(seq=seq + 1, base=seq, rows=[{**row, "hist": {"99999": 1}}]))
    neg = _send(b, delta(seq=seq + 1, base=seq, rows=[{**row, "n": -5}]))
    # On a version A does not hold yet: delivered later, nothing applied now.
    early = _send(b, delta(seq=seq + 6, base=seq + 5))
    # A replay of the version A holds (its sequence again, as a full snapshot: a delta
    # replaying it would need base = seq - 1, which is no sequence when B's publication
    # is its first, as when this test runs alone): nothing changes.
    replay = _send(b, {"jurisdiction": JS, "as_of": full["as_of"], "rows": [big], "seq": seq})
    tools.drain(a, b)
    assert _status(b, bad) == _status(b, hist) == _status(b, neg) == "dead"
    assert _status(b, early) == "pending"
    assert _status(b, replay) == "delivered"
    assert _copy(a) == held

    # About a jurisdiction A serves itself: refused.
    forged = {**delta(seq=seq + 1, base=seq), "jurisdiction": "310000"}
    with b.session() as s:
        mid = exchange.send(s, federation.CELLS_PUBLISHED, JS, "310000", forged).id
        s.commit()
    tools.drain(a, b)
    assert _status(b, mid) == "dead"
    assert _copy(a) == held
