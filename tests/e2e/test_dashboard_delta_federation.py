"""Delta publication of the dashboard's cells across two node processes on 127.0.0.1
(`tongban serve --node` each, made by `exchange init-local --nodes 2`: node-310000
serves 上海 and 浙江, node-320000 江苏 and 安徽), each publishing from its own worker.
江苏's cells change on node-320000 (as its refresh changes them); its worker publishes
a full snapshot first, then only the changed cells, which node-310000 applies on the
version they name, its copy equal to node-320000's cells (daily and monthly) after each.
A delta lost on the way (node-310000 down, the message given up) makes node-310000,
when the next one arrives, ask node-320000 for a full snapshot, whose answer repairs the
copy at once (no restart, no periodic full snapshot in the time of the test). SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from nodes import FAST_RETRIES, PeerNode, node_databases, serving, wait_until
from tongban.dashboard import cells
from tongban.dashboard.domain import Key, Value
from tongban.devserver import free_port_block
from tongban.exchange.local import init_local

JS = "320000"
#: The publishing job's interval (seconds), and no periodic full snapshot in the time of
#: the test: after its first, a node publishes a full snapshot only when restarted.
EVERY = {
    "TONGBAN_DASHBOARD_PUBLISH_SECONDS": "4",
    "TONGBAN_DASHBOARD_REFRESH_SECONDS": "3600",
    "TONGBAN_DASHBOARD_FULL_EVERY": "100000",
}
WAIT = 90.0
#: Seconds a node may take to start on a loaded machine.
START = 240.0


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, PeerNode]]:
    root = tmp_path_factory.mktemp("dashfed")
    with node_databases(request.param, 2, "dashfed") as urls:
        base = free_port_block(2, start=23700, step=41)
        init_local(root, 2, base, database_urls=urls, demo=False)
        with serving(root, {**FAST_RETRIES, **EVERY}, ready_timeout=START) as nodes:
            assert sorted(nodes) == ["310000", JS]
            yield nodes


def _session(node: PeerNode) -> Session:
    return Session(create_engine(node.env["TONGBAN_DATABASE_URL"]))


def _change(node: PeerNode, add: dict[Key, Value]) -> None:
    """Add to 江苏's cells on its node, as a refresh folding new events does."""
    with _session(node) as s:
        cells.store(s, add, "")
        s.commit()
    s.get_bind().dispose()  # type: ignore[union-attr]


def _plain(d: dict[Key, Value]) -> dict[Key, Value]:
    out = {}
    for k, v in d.items():
        v.hist = {b: c for b, c in (v.hist or {}).items() if c} or None
        if v.n or v.total or v.extra or v.hist:
            out[k] = v
    return out


def _read(node: PeerNode, origin: str, monthly: bool = False) -> dict[Key, Value]:
    with _session(node) as s:
        got = _plain(cells.read(s, origin, JS, monthly=monthly))
    s.get_bind().dispose()  # type: ignore[union-attr]
    return got


def _same(sh: PeerNode, js: PeerNode) -> bool:
    return _read(sh, JS) == _read(js, "") and _read(sh, JS, True) == _read(js, "", True)


def _publications(js: PeerNode) -> list[tuple[str, str, dict[str, Any]]]:
    """江苏's publications on its node's outbox, oldest first: (id, status, body)."""
    rows = js.sql(
        "SELECT id, status, payload FROM outbox_message WHERE type = 'dashboard.cells_published'"
        " AND source_jurisdiction = :j ORDER BY created_at",
        j=JS,
    )
    out = []
    for mid, status, payload in rows:
        body = payload if isinstance(payload, dict) else json.loads(payload)
        out.append((str(mid), str(status), body))
    return out


def _cell(i: int, n: int, bucket: int = 1) -> dict[Key, Value]:
    day = date.today() - timedelta(days=40 - i)
    key = Key("cases.decided", day, "320500", "320100", JS, "online", "", "")
    return {key: Value(n, n, 0, {bucket: n})}


def _seq_wait(js: PeerNode, after: int) -> tuple[str, str, dict[str, Any]]:
    return wait_until(
        f"a publication of {JS} after {after}",
        lambda: next((p for p in _publications(js) if int(p[2]["seq"]) > after), None),
        WAIT,
        js.server.log_tail if hasattr(js.server, "log_tail") else lambda: "",
    )


def _last(js: PeerNode) -> int:
    return max((int(p[2]["seq"]) for p in _publications(js)), default=0)


def test_changed_cells_only_travel_and_the_copy_follows(pair: dict[str, PeerNode]) -> None:
    sh, js = pair["310000"], pair[JS]
    seeded: dict[Key, Value] = {}
    for i in range(40):
        seeded.update(_cell(i, 3))
    first = wait_until("the first publication", lambda: _publications(js), WAIT)[0]
    assert first[2].get("base") is None  # a new process publishes whole (no cell yet)
    before = _last(js)
    _change(js, seeded)
    _, _, body = _seq_wait(js, before)
    assert body["base"] == before and len(body["rows"]) == 40  # every cell is new
    wait_until("the first copy", lambda: _same(sh, js) or None, WAIT)
    last = int(body["seq"])
    deltas = 0
    for step in range(3):
        _change(js, {**_cell(step, 1, 2 + step), **_cell(30 + step, 2)})
        _, _, body = _seq_wait(js, last)
        assert body["base"] == body["seq"] - 1 == last
        assert len(body["rows"]) == 2  # the two changed cells of 40
        deltas += 1
        last = int(body["seq"])
        wait_until("the copy after a delta", lambda: _same(sh, js) or None, WAIT)
    assert deltas == 3


def _asked(sh: PeerNode) -> list[tuple[str, dict[str, Any]]]:
    """The requests for a full snapshot on node-310000's outbox: (status, body)."""
    rows = sh.sql(
        "SELECT status, payload FROM outbox_message WHERE type = 'dashboard.snapshot_wanted'"
    )
    return [(str(st), p if isinstance(p, dict) else json.loads(p)) for st, p in rows]


def test_a_lost_delta_is_repaired_by_asking_for_a_snapshot(pair: dict[str, PeerNode]) -> None:
    sh, js = pair["310000"], pair[JS]
    before = _last(js)
    _change(js, _cell(5, 1))
    delta = _seq_wait(js, before)
    wait_until("the copy", lambda: _same(sh, js) or None, WAIT)
    held = _read(sh, JS)

    sh.stop()
    _change(js, _cell(6, 1))
    lost = _seq_wait(js, int(delta[2]["seq"]))
    assert lost[2]["base"] == delta[2]["seq"]
    js.sql("UPDATE outbox_message SET status = 'dead' WHERE id = :i", i=lost[0])  # given up
    sh.start()
    sh.wait_ready(START)
    assert _read(sh, JS) == held and not _same(sh, js)
    _change(js, _cell(7, 1))
    late = _seq_wait(js, int(lost[2]["seq"]))
    assert late[2]["base"] == lost[2]["seq"]
    # node-310000 holds `delta`, gets `late`: it asks node-320000 at once, whose answer
    # repairs the copy — no restart, no N-th round (FULL_EVERY is 100000 here).
    wait_until("the copy repaired", lambda: _same(sh, js) or None, WAIT)
    asked = _asked(sh)
    assert [body for _st, body in asked] == [
        {"jurisdiction": JS, "held": delta[2]["seq"], "seen": late[2]["seq"]}
    ]
    answer = next(p for p in _publications(js) if int(p[2]["seq"]) > int(late[2]["seq"]))
    assert answer[2].get("base") is None  # the answer: a full snapshot
    assert len(answer[2]["rows"]) == len(_read(js, ""))
