"""The push channel of the virtual window: a page's read waits until the session changes.

Each room page long-polls its own node (`GET …/sync?wait=1`, an async endpoint): the node
answers at once when the session moved past the page's cursor, else holds the request
until it does or a bound passes (`WAIT_SECONDS`; `QUEUED_WAIT_SECONDS` while queued,
since a queue place moves without an event of the session). Waiting holds no thread and
no database transaction: a waiter is an `asyncio.Event` on this process's `Board`.

What wakes a waiter:

- on the competent node, any commit that changed a session (a step of either side, a
  signal, a take, a new session in an authority's queue): `touch` marks the session and
  its authority in the session's info, and the `after_commit` listener below notifies
  the board — the officer's page and the queue page wake in the same process;
- on the clerk's node, the competent node's **poke**: after an officer's step commits,
  the competent node sends the clerk's node the unrecorded signed query
  `virtualwindow.changed` (only the session id; `poke_soon`, coalesced to one in flight
  per session); the clerk's node checks that it holds the session's ticket and that the
  sender serves the session's competent jurisdiction, and wakes its waiters, which then
  read the session through the usual relayed `virtualwindow.view`.

A lost poke (the nodes partitioned, the clerk's node restarted) costs latency, not
data: every wait ends at its bound with a fresh relayed read, and on the competent
node a waiter looks at the database again every `RECHECK_SECONDS` (a deployment with
several worker processes commits in one and waits in another). At most `MAX_WAITERS`
requests wait per process; beyond that a read is answered at once and the page falls
back to polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from tongban.exchange import query
from tongban.exchange.contracts import Refused, Sender
from tongban.virtualwindow.models import WindowTicket
from tongban.virtualwindow.schemas import ChangedAnswer, ChangedAsk

log = logging.getLogger(__name__)

CHANGED = "virtualwindow.changed"
#: How long a page's read may wait for a change of a live session, and of a queued one.
WAIT_SECONDS = 15.0
QUEUED_WAIT_SECONDS = 5.0
#: A waiter on the competent node reads the database again at least this often.
RECHECK_SECONDS = 2.0
#: Requests waiting at once in one process (each is an asyncio.Event, no thread).
MAX_WAITERS = 256
#: Deadline of one poke (in the background; a clerk's node that does not answer in time
#: is skipped: its page reads again at the wait's bound).
POKE_TIMEOUT_MS = 5000
#: Session.info key: what this transaction changed (session ids, authority keys).
_TOUCHED = "tongban.virtualwindow.touched"
#: Tokens kept for this many keys at most (then those without a waiter are dropped).
_MAX_KEYS = 10_000


def authority_key(authority_id: uuid.UUID | str) -> str:
    return f"authority:{authority_id}"


class Board:
    """Per key (a session id, or an authority's queue), a counter that `notify` bumps
    and the requests waiting for it to move. Thread-safe: commits notify from worker
    threads, waiters wait on an event loop."""

    def __init__(self, max_waiters: int = MAX_WAITERS) -> None:
        self.max_waiters = max_waiters
        self._lock = threading.Lock()
        self._tokens: dict[str, int] = {}
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._count = 0

    @property
    def waiting(self) -> int:
        return self._count

    def token(self, key: str) -> int:
        """The key's counter now: read it before looking at the state, wait with it."""
        with self._lock:
            return self._tokens.get(key, 0)

    def notify(self, *keys: str) -> None:
        woken: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        with self._lock:
            if len(self._tokens) > _MAX_KEYS:
                self._tokens = {k: v for k, v in self._tokens.items() if k in self._waiters}
            for key in keys:
                self._tokens[key] = self._tokens.get(key, 0) + 1
                woken.extend(self._waiters.pop(key, ()))
        for loop, ev in woken:
            # A closed loop: nobody waits there any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(ev.set)

    async def wait(self, key: str, token: int, timeout: float) -> bool | None:
        """Wait until `key` moves past `token` (True), `timeout` seconds pass (False), or
        — without waiting — None when `MAX_WAITERS` requests already wait."""
        ev = asyncio.Event()
        entry = (asyncio.get_running_loop(), ev)
        with self._lock:
            if self._tokens.get(key, 0) != token:
                return True
            if self._count >= self.max_waiters:
                return None
            self._waiters.setdefault(key, set()).add(entry)
            self._count += 1
        try:
            await asyncio.wait_for(ev.wait(), max(0.0, timeout))
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                self._count -= 1
                waiters = self._waiters.get(key)
                if waiters is not None:
                    waiters.discard(entry)
                    if not waiters:
                        del self._waiters[key]


#: This process's board (one per process: the nodes of a test run in one process share
#: it, which only ever wakes a waiter early; a woken waiter reads before answering).
BOARD = Board()


def touch(session: Session, *keys: str) -> None:
    """Mark what this transaction changed; its waiters wake when it commits."""
    session.info.setdefault(_TOUCHED, set()).update(keys)


def touch_session(session: Session, session_id: uuid.UUID, authority_id: uuid.UUID) -> None:
    touch(session, str(session_id), authority_key(authority_id))


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    keys = session.info.pop(_TOUCHED, None)
    if keys:
        BOARD.notify(*keys)


@event.listens_for(Session, "after_soft_rollback")
def _rolled_back(session: Session, previous: Any) -> None:
    if previous.parent is None:
        session.info.pop(_TOUCHED, None)


def has_news(view: dict[str, Any], since: int, signals_since: int) -> bool:
    """The view has something the page (at cursors `since`, `signals_since`) has not."""
    return int(view["seq"]) > since or bool(view["signals"])


def wait_bound(view: dict[str, Any]) -> float:
    return QUEUED_WAIT_SECONDS if view["state"] == "queued" else WAIT_SECONDS


# --- the poke: the competent node tells the clerk's node a session changed -------------

_pokes = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vw-poke")
_inflight: dict[uuid.UUID, bool] = {}  # session id -> poke again when this one is done
_inflight_lock = threading.Lock()


def poke_soon(
    factory: sessionmaker[Session],
    session_id: uuid.UUID,
    competent_jurisdiction: str,
    origin_jurisdiction: str,
) -> None:
    """Tell the clerk's node, in the background, that the session changed (after the
    change committed). At most one poke per session is in flight; changes meanwhile are
    folded into one more."""
    with _inflight_lock:
        if session_id in _inflight:
            _inflight[session_id] = True
            return
        _inflight[session_id] = False
    _pokes.submit(_poke, factory, session_id, competent_jurisdiction, origin_jurisdiction)


def _poke(
    factory: sessionmaker[Session],
    session_id: uuid.UUID,
    competent_jurisdiction: str,
    origin_jurisdiction: str,
) -> None:
    while True:
        session = factory()
        try:
            query.ask(
                session,
                CHANGED,
                source=competent_jurisdiction,
                target=origin_jurisdiction,
                payload=ChangedAsk(session_id=session_id),
                timeout_ms=POKE_TIMEOUT_MS,
                # Not holding this node's write lock (SQLite) over the round trip: the
                # clerk's node may be reading the session from this node right now.
                release_idle=True,
            )
            session.commit()
        except query.QueryFailed as exc:  # the clerk's page finds it at its next read
            log.info("poke of %s to %s: %s", session_id, origin_jurisdiction, exc.detail)
            session.commit()  # the failed query's record
        except Exception:  # noqa: BLE001 - a background notice must never take the node down
            log.exception("poke of %s failed", session_id)
            session.rollback()
        finally:
            session.close()
        with _inflight_lock:
            if not _inflight.get(session_id):
                _inflight.pop(session_id, None)
                return
            _inflight[session_id] = False


def _authorise_changed(session: Session, ask: ChangedAsk, sender: Sender) -> None:
    """This node holds the session's ticket and the sender serves the jurisdiction where
    the session lives (a node may only wake the waiters of its own sessions)."""
    ticket = session.get(WindowTicket, ask.session_id)
    if ticket is None:
        raise Refused("not-allowed", "本节点没有该远程窗口会话", 404)
    sender.require(ticket.competent_jurisdiction, "会话的主管辖区")
    if sender.source_jurisdiction != ticket.competent_jurisdiction:
        raise Refused("not-allowed", "会话的主管辖区与查询的来源辖区不一致")


@query.query_handler(
    CHANGED,
    schema=ChangedAsk,
    answer_schema=ChangedAnswer,
    authorise=_authorise_changed,
    recorded=False,
)
def _answer_changed(session: Session, ask: ChangedAsk, ctx: query.QueryContext) -> ChangedAnswer:
    # Changes nothing stored: wakes this process's waiters for the session (they read it
    # through the relayed view, whose answer is what the page gets).
    BOARD.notify(str(ask.session_id))
    return ChangedAnswer(woken=True)
