"""The push channel (virtualwindow/push.py): a waiting read wakes when the session
changes — on the competent node by the commit, on the clerk's node by the competent
node's signed poke — holds no thread while it waits, and gives up at its bound; the
number of waiters is bounded. The poke is checked like any query: only the node serving
the session's competent jurisdiction may wake the waiters of a session the receiving
node holds a ticket for, and an answered poke is not recorded."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from integration.virtualwindow.sessions import hefei_officer, queued_from_b
from tongban.exchange import query
from tongban.exchange.models import ExchangeQuery
from tongban.identity.models import Account
from tongban.virtualwindow import push, service
from tongban.virtualwindow.schemas import ChangedAsk


def run(scenario: Coroutine[Any, Any, Any]) -> Any:
    """`asyncio.run` in a thread of its own: Playwright's sync API (the browser tests'
    session-wide fixture, when one ran earlier in this worker) leaves the test thread
    marked as running an event loop, and `asyncio.run` there refuses to start."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, scenario).result()


def test_a_waiter_wakes_when_notified_from_another_thread_and_gives_up_at_its_bound() -> None:
    board = push.Board(max_waiters=2)

    async def scenario() -> list[Any]:
        token = board.token("s")
        started = time.monotonic()
        threading.Timer(0.05, board.notify, args=("s",)).start()
        woke = await board.wait("s", token, 5.0)
        quick = time.monotonic() - started
        timed_out = await board.wait("s", board.token("s"), 0.05)
        # The key moved between the read of the token and the wait: no wait at all.
        stale = await board.wait("s", token, 5.0)
        return [woke, quick < 1.0, timed_out, stale, board.waiting]

    assert run(scenario()) == [True, True, False, True, 0]


def test_beyond_the_bound_on_waiters_a_read_is_not_held() -> None:
    board = push.Board(max_waiters=2)

    async def scenario() -> Any:
        held = [asyncio.create_task(board.wait(f"k{i}", 0, 5.0)) for i in range(2)]
        await asyncio.sleep(0.01)
        refused = await board.wait("k9", 0, 5.0)
        full = board.waiting
        board.notify("k0", "k1")
        woken = await asyncio.gather(*held)
        return refused, full, woken, board.waiting

    assert run(scenario()) == (None, 2, [True, True], 0)


def test_a_commit_on_the_competent_node_wakes_its_waiters(pair: Any) -> None:
    a, b = pair
    with a.session() as s:
        officer = hefei_officer(s)
        s.commit()
        officer_id, queue_key = officer.id, push.authority_key(str(officer.authority_id))
    before_queue = push.BOARD.token(queue_key)
    sid, _ = queued_from_b(b)
    # The new session in the authority's queue woke the queue's waiters.
    assert push.BOARD.token(queue_key) > before_queue
    before = push.BOARD.token(str(sid))
    with a.session() as s:
        officer = s.get(Account, officer_id)
        service.take(s, officer, sid)
        assert push.BOARD.token(str(sid)) == before, "woken before the commit"
        s.commit()
    assert push.BOARD.token(str(sid)) == before + 1
    with a.session() as s:
        officer = s.get(Account, officer_id)
        service.officer_act(s, officer, sid, "chat", {"text": "您好"})
        s.rollback()
    assert push.BOARD.token(str(sid)) == before + 1, "a rolled-back change woke waiters"


def test_the_competent_nodes_poke_wakes_the_clerks_node_and_is_not_recorded(
    pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = pair
    monkeypatch.setattr(push, "POKE_TIMEOUT_MS", 30_000)  # a loaded CI machine
    sid, _ = queued_from_b(b)
    before = push.BOARD.token(str(sid))
    with a.session() as s:
        kept = len(list(s.scalars(select(ExchangeQuery))))
    push._poke(a.factory, sid, "340000", "320000")
    assert push.BOARD.token(str(sid)) == before + 1
    for node in (a, b):
        with node.session() as s:
            rows = s.scalars(select(ExchangeQuery).where(ExchangeQuery.type == push.CHANGED))
            assert list(rows) == []
    with a.session() as s:
        assert len(list(s.scalars(select(ExchangeQuery)))) == kept


def test_a_poke_for_a_session_the_node_does_not_hold_or_from_the_wrong_jurisdiction_is_refused(
    pair: Any,
) -> None:
    a, b = pair
    sid, _ = queued_from_b(b)
    with a.session() as s:
        with pytest.raises(query.QueryRefused) as unknown:
            query.ask(
                s,
                push.CHANGED,
                source="340000",
                target="320000",
                payload=ChangedAsk(session_id=uuid.uuid4()),
            )
        # A serves 上海 too, but the session lives in 安徽's jurisdiction.
        with pytest.raises(query.QueryRefused) as wrong:
            query.ask(
                s,
                push.CHANGED,
                source="310000",
                target="320000",
                payload=ChangedAsk(session_id=sid),
            )
        s.commit()
    assert (unknown.value.status, wrong.value.status) == (404, 403)
    # Refused pokes leave their trace on both nodes.
    for node, role in ((a, "asked"), (b, "answered")):
        with node.session() as s:
            rows = s.scalars(select(ExchangeQuery).where(ExchangeQuery.type == push.CHANGED))
            assert [(q.role, q.outcome) for q in rows] == [(role, "refused")] * 2


def test_pokes_to_an_unreachable_clerks_node_are_coalesced_and_fail_quietly(
    pair: Any,
    hosts: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = pair
    sid, _ = queued_from_b(b)
    routed = hosts.handle_request

    def unreachable(request: httpx.Request) -> httpx.Response:
        if request.url.host == "node-b.test":
            time.sleep(0.3)  # a connection that takes a while to fail
            raise httpx.ConnectError("connection refused", request=request)
        return routed(request)

    def failed() -> list[Any]:
        with a.session() as s:
            q = select(ExchangeQuery).where(
                ExchangeQuery.type == push.CHANGED, ExchangeQuery.outcome == "unavailable"
            )
            return list(s.scalars(q))

    earlier = len(failed())
    monkeypatch.setattr(hosts, "handle_request", unreachable)
    for _ in range(20):
        push.poke_soon(a.factory, sid, "340000", "320000")
    deadline = time.monotonic() + 10
    while sid in push._inflight and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sid not in push._inflight
    # Twenty changes while the first poke was in flight: that one and one more, each
    # failed and recorded as such.
    assert len(failed()) - earlier == 2
