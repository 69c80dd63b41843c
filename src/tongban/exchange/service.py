"""The outbox, the inbox and the dispatcher.

Whatever one jurisdiction asks of another is a message written to the outbox in the
same transaction as the change that caused it. The dispatcher delivers it: to this
node's own inbox when this node serves the target jurisdiction (the embedded default
serves them all), otherwise signed over HTTP to the inbox of the node the federation
file names for the target (transport.py). Applying a message is idempotent by its id,
whichever way it came.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, make_transient_to_detached, sessionmaker

from tongban.config import Settings
from tongban.crypto.signing import PrivateKey
from tongban.db import new_id, utcnow
from tongban.exchange.contracts import DEFAULT_VERSION as DEFAULT_VERSION
from tongban.exchange.contracts import Authoriser as Authoriser
from tongban.exchange.contracts import Refused as Refused
from tongban.exchange.contracts import Sender as Sender
from tongban.exchange.contracts import any_node as any_node
from tongban.exchange.contracts import check as check
from tongban.exchange.contracts import contract as contract
from tongban.exchange.contracts import contract_for as contract_for
from tongban.exchange.contracts import covers as covers
from tongban.exchange.contracts import version_for as version_for
from tongban.exchange.federation import Federation, Node
from tongban.exchange.models import InboxMessage, OutboxMessage
from tongban.exchange.schema import OpenPayload as OpenPayload
from tongban.exchange.schema import Payload as Payload
from tongban.exchange.transport import (
    ALREADY,
    APPLIED,
    REFUSED,
    RETRY_LATER,
    BatchAnswer,
    Envelope,
    HttpTransport,
    Outcome,
    Result,
    signed_item,
)
from tongban.kernel import events, history
from tongban.kernel.node import settings_of

log = logging.getLogger(__name__)

Handler = Callable[[Session, dict[str, Any], Any], None]
#: Adds to a payload what only a remote receiver needs (e.g. file contents), at send time.
Enricher = Callable[[Session, dict[str, Any], Settings], dict[str, Any]]
_handlers: dict[str, Handler] = {}
Prefetch = Callable[[Session, list[dict[str, Any]]], None]
_prefetchers: dict[str, Prefetch] = {}
_enrichers: dict[str, Enricher] = {}
#: Per message type, what a message is about for its delivery order (its context's
#: declaration; see `lane` and `ordering_key`).
_lanes: dict[str, Callable[[Mapping[str, Any]], str | None]] = {}
#: What a message's handlers make the transaction send on (the kernel's replication
#: registers itself with `on_send_on`): written at once when a message is settled, and
#: dropped when a pass is taken back whole. The exchange does not import who sends on.
_send_now: list[Callable[[Session], object]] = []
_forget_unsent: list[Callable[[Session], None]] = []

#: Back-off between delivery attempts, by attempt number; the last applies thereafter.
#: (Defaults; TONGBAN_EXCHANGE_BACKOFF and TONGBAN_EXCHANGE_MAX_ATTEMPTS override them.)
BACKOFF_SECONDS: tuple[float, ...] = (1, 5, 30, 120, 600)
MAX_ATTEMPTS = 8
#: A claimed message is not claimed again for this long (a crashed worker's messages
#: come back after it); longer than any one delivery can take.
LEASE_SECONDS = 60.0


class NoRoute(Exception):
    """No node known for the target jurisdiction."""


class OutOfOrder(Exception):
    """A handler cannot apply this message before an earlier one: deliver it later.
    Over HTTP the receiver answers 409, which the sender retries with back-off."""


def on_send_on(send_now: Callable[[Session], object], forget: Callable[[Session], None]) -> None:
    """Register what writes a transaction's pending messages now (`send_now(session)`)
    and what drops them (`forget(session)`); once per pair."""
    if send_now not in _send_now:
        _send_now.append(send_now)
    if forget not in _forget_unsent:
        _forget_unsent.append(forget)


def _send_on(session: Session) -> None:
    for fn in _send_now:
        fn(session)


def handler(
    message_type: str,
    *,
    schema: type[BaseModel] | None = None,
    authorise: Authoriser | None = None,
    versions: Iterable[int] = (DEFAULT_VERSION,),
    prefetch: Prefetch | None = None,
) -> Callable[[Handler], Handler]:
    """Register the function that applies messages of `message_type` at the receiver,
    with the payload's schema and the check of the sender's right. A type registered
    without both is refused until it gets them (see `contract`). `prefetch(session,
    payloads)`, if given, is called once for the messages of this type a batch applies,
    before any of them (raw payloads, not yet checked): to read in one query what the
    handler would read for each."""

    def deco(fn: Handler) -> Handler:
        _handlers[message_type] = fn
        if prefetch is not None:
            _prefetchers[message_type] = prefetch
        if schema is not None and authorise is not None:
            contract(message_type, schema=schema, authorise=authorise, versions=versions)
        return fn

    return deco


def lane(message_type: str, key: Callable[[Mapping[str, Any]], str | None]) -> None:
    """Declare what messages of `message_type` are about, for their delivery order:
    `key(payload)` names the lane (messages of one lane to one node leave in the order
    they were queued), None for the message's own."""
    _lanes[message_type] = key


def outgoing(message_type: str) -> Callable[[Enricher], Enricher]:
    """Register a function that completes a payload of `message_type` when it leaves this
    node over HTTP (never for local delivery)."""

    def deco(fn: Enricher) -> Enricher:
        _enrichers[message_type] = fn
        return fn

    return deco


#: A message that only proves the path: signed, verified, recorded in the inbox.
PING = "exchange.ping"


class PingPayload(OpenPayload):
    note: str = ""


@handler(PING, schema=PingPayload, authorise=any_node)
def on_ping(session: Session, payload: dict[str, Any], msg: Any) -> None:
    """Nothing to apply: the inbox row written with it is the proof of delivery."""


def uncovered_types() -> frozenset[str]:
    """Registered message types without a schema and an authoriser (must be none)."""
    return frozenset(t for t in _handlers if not covers(t))


def handler_types() -> frozenset[str]:
    """Every message type this process can apply."""
    return frozenset(_handlers)


def send(
    session: Session,
    message_type: str,
    source_jurisdiction: str,
    target_jurisdiction: str,
    payload: dict[str, Any],
) -> OutboxMessage:
    """Queue a message in the caller's transaction; it leaves only if that commits. Its
    id and queueing time are set at once; the row is written by the transaction's next
    flush, so a change that sends several messages writes them (and their audit entries)
    together, and they leave in the order sent."""
    msg = OutboxMessage(
        id=new_id(),
        created_at=_queued_at(),
        type=message_type,
        source_jurisdiction=source_jurisdiction,
        target_jurisdiction=target_jurisdiction,
        payload=payload,
        status="pending",
    )
    session.add(msg)
    return msg


def send_written(
    session: Session,
    message_type: str,
    source_jurisdiction: str,
    target_jurisdiction: str,
    payload: dict[str, Any],
) -> uuid.UUID:
    """`send`, with the row written at once by one compiled Core INSERT on the session's
    connection (in its transaction, committed or rolled back with it) instead of by the
    next flush: no ORM object is built or tracked for a row the sender never reads back
    (issue 14: with the case and its event written the same way, a submission needs no
    flush at all). Its ``message.sent`` audit entry is the one a flush would give it,
    held by the audit hook for the next statement that stages entries
    (`events.RowsWritten`). The same row and entry as `send`; returns the message's id."""
    row = {
        "id": new_id(),
        "type": message_type,
        "source_jurisdiction": source_jurisdiction,
        "target_jurisdiction": target_jurisdiction,
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": utcnow(),
        "last_error": None,
        "created_at": _queued_at(),
        "delivered_at": None,
        "dead_at": None,
        "replays": 0,
        "replayed_at": None,
        "replayed_by": None,
    }
    session.connection().execute(_outbox_insert(), row)
    events.publish(session, events.RowsWritten(OutboxMessage, (row,)))
    return cast(uuid.UUID, row["id"])


@lru_cache(maxsize=1)
def _outbox_insert() -> Any:
    return cast(Table, OutboxMessage.__table__).insert()


_stamp_lock = threading.Lock()
#: The last queueing time this process gave out (read and set under `_stamp_lock`).
_last_stamp: datetime | None = None


def _queued_at() -> datetime:
    """Now, but later than whatever this process queued before: the dispatcher orders a
    lane by queueing time (then by the random id), so two messages sent in one
    transaction within one microsecond must not tie."""
    global _last_stamp
    with _stamp_lock:
        now = utcnow()
        if _last_stamp is not None and now <= _last_stamp:
            now = _last_stamp + timedelta(microseconds=1)
        _last_stamp = now
        return now


def serves(jurisdiction_code: str, served: str = "*") -> bool:
    """Whether this node serves `jurisdiction_code` ('*' = every jurisdiction)."""
    return served == "*" or jurisdiction_code in {s.strip() for s in served.split(",")}


def serves_here(session: Session, jurisdiction_code: str) -> bool:
    """Whether the node whose unit of work `session` is serves `jurisdiction_code`."""
    return serves(jurisdiction_code, settings_of(session).served_jurisdictions)


def _claim_inbox(session: Session, rows: list[InboxMessage]) -> set[uuid.UUID]:
    """Write the inbox rows whose id is not there yet — one ``INSERT … ON CONFLICT (id) DO
    NOTHING RETURNING id``, no read first — and return the ids this transaction wrote. A
    concurrent delivery of the same id waits for the other transaction and then finds
    its row; an id twice in `rows` is written once."""
    if not rows:
        return set()
    stmt = _inbox_insert(session.get_bind().dialect.name)
    values = [{key: getattr(row, key) for key in _INBOX_COLUMNS} for row in rows]
    # Executed with the rows as parameters (SQLAlchemy's "insertmanyvalues": still one
    # INSERT with many VALUES on the wire), so the statement is compiled once per process
    # instead of once per batch with a bind parameter per column of each row.
    return set(session.scalars(stmt, values))


_INBOX_COLUMNS = tuple(c.key for c in cast(Table, InboxMessage.__table__).columns)


@lru_cache(maxsize=4)
def _inbox_insert(dialect: str) -> Any:
    """The batch inbox's ``INSERT … ON CONFLICT (id) DO NOTHING RETURNING id``, built once."""
    table = cast(Table, InboxMessage.__table__)
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return (
        insert(table)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(table.c.id)  # the rows written (rowcount is not reliable here)
    )


def _recorded(session: Session, row: InboxMessage) -> None:
    """The written inbox row joins the Session as persistent (no second INSERT). Its
    audit entry (``message.applied``) was staged by the audit hook when the Core insert
    wrote it, as for a row a flush inserts."""
    make_transient_to_detached(row)
    session.add(row)


def _inbox_row(
    msg_id: uuid.UUID, msg_type: str, source: str, target: str, node: str | None
) -> InboxMessage:
    return InboxMessage(
        id=msg_id,
        type=msg_type,
        source_jurisdiction=source,
        target_jurisdiction=target,
        source_node=node,
        received_at=utcnow(),
    )


def _run(
    session: Session,
    msg_type: str,
    payload: dict[str, Any],
    msg: Any,
    sender: Sender,
    version: int,
    settle: bool,
    flush: bool = True,
) -> None:
    """Parse, authorise and apply one message whose inbox row is written. `flush=False`
    (a batch's pass, in one savepoint and `history.one_flush`): what it wrote goes with
    the pass's one flush at its end."""
    fn = _handlers.get(msg_type)
    if fn is None:
        raise Refused("no-handler", f"本节点不处理 {msg_type} 消息", 422)
    check(session, msg_type, payload, sender, version)
    fn(session, payload, msg)
    if settle:
        # What the handler's changes send on (kernel.replication writes it when the
        # transaction commits) is written now, as this message's own commit would: a
        # later message of the batch, or its failure, leaves it as it is.
        _send_on(session)
    if flush:
        session.flush()


def _apply(
    session: Session,
    msg_id: uuid.UUID,
    msg_type: str,
    source: str,
    target: str,
    payload: dict[str, Any],
    msg: Any,
    sender: Sender,
    version: int = DEFAULT_VERSION,
) -> bool:
    """One message in the caller's transaction, as the single inbox and local delivery
    apply it (unchanged by batches): applied before by id -> False; else checked,
    applied, and its inbox row written with the handler's writes. Two deliveries of the
    same id at once: the primary key decides (the caller gets an IntegrityError)."""
    if session.get(InboxMessage, msg_id) is not None:
        return False
    _run(session, msg_type, payload, msg, sender, version, settle=False)
    session.add(_inbox_row(msg_id, msg_type, source, target, sender.node))
    session.flush()
    return True


def _apply_guarded(session: Session, env: Envelope, sender: Sender) -> bool:
    """One message of a batch in a savepoint of its own: its inbox row written first
    (``ON CONFLICT DO NOTHING``: a second delivery finds it and changes nothing), then
    checked and applied; a refusal or a failing handler takes back the row with the
    handler's writes, and the batch's transaction goes on."""
    with session.begin_nested():
        row = _inbox_row(
            env.id, env.type, env.source_jurisdiction, env.target_jurisdiction, sender.node
        )
        if not _claim_inbox(session, [row]):
            return False
        _run(session, env.type, env.payload, env, sender, env.version, settle=True)
        _recorded(session, row)
    return True


def apply_locally(session: Session, msg: OutboxMessage) -> bool:
    """Apply `msg` through this node's inbox; False when it had been applied already.
    Its sender is this node."""
    # Only this node's own transactions write its outbox: the trust boundary is the
    # signed inbox. A local message is still parsed into its schema before it applies.
    sender = Sender(None, frozenset({"*"}), msg.source_jurisdiction, msg.target_jurisdiction)
    return _apply(
        session,
        msg.id,
        msg.type,
        msg.source_jurisdiction,
        msg.target_jurisdiction,
        msg.payload,
        msg,
        sender,
        version_for(msg.type),  # written by this node, at the version it writes
    )


def _node_of(session: Session, env: Envelope, node: Node | None) -> Node:
    if node is None:
        node = federation_for(settings_of(session)).nodes.get(env.source_node)
    if node is None:
        raise Refused("unknown-node", f"未知的发送节点 {env.source_node}", 401)
    return node


def receive(session: Session, env: Envelope, node: Node | None = None) -> bool:
    """Apply a verified message from another node (`node`, the one whose key signed it;
    looked up in this node's federation file when not given); False when applied before
    (by id)."""
    node = _node_of(session, env, node)
    return _apply(
        session,
        env.id,
        env.type,
        env.source_jurisdiction,
        env.target_jurisdiction,
        env.payload,
        env,
        _sender(env, node),
        env.version,
    )


def refusal(status: int, reason: str, detail: str, title: str = "消息被拒收") -> dict[str, Any]:
    """The RFC 9457 body of a message of a batch refused or failed (`exchange/<reason>`)."""
    return {
        "type": f"https://tongban.dev/problems/exchange/{reason}",
        "title": title,
        "status": status,
        "detail": detail,
    }


def _sender(env: Envelope, node: Node) -> Sender:
    return Sender(
        node.id, frozenset(node.jurisdictions), env.source_jurisdiction, env.target_jurisdiction
    )


def receive_batch(
    session: Session, messages: list[tuple[Envelope, Node | None]]
) -> list[BatchAnswer]:
    """Apply verified messages in the caller's transaction, in their order; the caller
    commits once. One statement writes the inbox rows of them all (those already there
    are answered "already applied"), then each is applied. Should one be refused or fail,
    that pass is taken back (one savepoint around it) and the messages are applied again
    each in a savepoint of its own: the one refused or failing is answered alone (with
    whether the sender should retry), the others stay applied."""
    try:
        with session.begin_nested():
            return _apply_all(session, messages)
    except Exception:  # noqa: BLE001 - one of them is refused or fails: one by one
        log.info("a batch of %s message(s) applied one by one", len(messages))
        for forget in _forget_unsent:  # what the pass taken back would send
            forget(session)
        # The inbox rows of the pass taken back are still in the Session (as persistent,
        # expired): out, so that the same ids can be written again.
        ids = {env.id for env, _node in messages}
        for key in list(session.identity_map.keys()):
            if key[0] is InboxMessage and key[1][0] in ids:  # by key: no refresh
                session.expunge(session.identity_map[key])
    return [_apply_one(session, env, node) for env, node in messages]


def _apply_all(session: Session, messages: list[tuple[Envelope, Node | None]]) -> list[BatchAnswer]:
    """Every message applied, or an exception (the caller's savepoint takes all back)."""
    todo = [(env, _sender(env, _node_of(session, env, node))) for env, node in messages]
    rows = [
        _inbox_row(e.id, e.type, e.source_jurisdiction, e.target_jurisdiction, snd.node)
        for e, snd in todo
    ]
    fresh = _claim_inbox(session, rows)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for env, _snd in todo:
        if env.id in fresh and env.type in _prefetchers and isinstance(env.payload, dict):
            by_type.setdefault(env.type, []).append(env.payload)
    for msg_type, payloads in by_type.items():
        _prefetchers[msg_type](session, payloads)
    answers = []
    # One flush for the pass, at its end (history.one_flush): the records the messages
    # create, their events and the audit entries go in one INSERT a table; then what the
    # messages send on (receipts) is built from the written records, as the pass's commit
    # would, and written by one more flush. A failure takes the pass back like any other,
    # and the messages are applied again one by one, each flushing and sending its own.
    with history.one_flush(session):
        for (env, snd), row in zip(todo, rows, strict=True):
            if env.id not in fresh:
                answers.append(BatchAnswer(str(env.id), ALREADY))
                continue
            fresh.discard(env.id)  # the same id later in the batch: already applied
            _run(session, env.type, env.payload, env, snd, env.version, False, flush=False)
            _recorded(session, row)
            answers.append(BatchAnswer(str(env.id), APPLIED))
    _send_on(session)
    session.flush()
    return answers


def log_refused(env: Envelope, exc: Refused) -> None:
    """The log line of a verified message refused for its payload or the sender's right."""
    log.warning(
        "refused message %s (%s) from %s: %s %s",
        env.id,
        env.type,
        env.source_node,
        exc.reason,
        exc.detail,
    )


def _apply_one(session: Session, env: Envelope, node: Node | None) -> BatchAnswer:
    """One message of a batch in a savepoint of its own, and its answer."""
    mid = str(env.id)
    try:
        applied = _apply_guarded(session, env, _sender(env, _node_of(session, env, node)))
        return BatchAnswer(mid, APPLIED if applied else ALREADY)
    except Refused as exc:
        log_refused(env, exc)
        return BatchAnswer(mid, REFUSED, refusal(exc.status, exc.reason, exc.detail))
    except OutOfOrder as exc:
        return BatchAnswer(
            mid, RETRY_LATER, refusal(409, "out-of-order", str(exc), "消息暂不能处理")
        )
    except Exception as exc:  # noqa: BLE001 - this one is retried, the others go on
        log.exception("message %s (%s) from %s failed", env.id, env.type, env.source_node)
        detail = f"{type(exc).__name__}: {exc}"[:2000]
        return BatchAnswer(mid, RETRY_LATER, refusal(500, "handler-failed", detail, "消息处理失败"))


def allowed_types(sender: Node) -> frozenset[str]:
    """The types `sender` may send here: those this node can apply, narrowed by the
    node's `sends` list in the federation file when it has one."""
    types = handler_types()
    return types if sender.sends is None else types & sender.sends


# --- routing and the node's identity -----------------------------------------------------


@dataclass
class Remote:
    """What the dispatcher needs to reach other nodes."""

    node_id: str
    federation: Federation
    transport: HttpTransport
    key: Callable[[Session], PrivateKey]
    settings: Settings
    #: Most messages posted in one batch to a node that takes batches (1: one by one).
    batch: int = 100


def federation_for(settings: Settings) -> Federation:
    """The federation of `settings` (the embedded single node when no file is set)."""
    from tongban.exchange.federation import load

    if settings.federation_file is None:
        return Federation.embedded(settings.node_id)
    return load(settings.federation_file)


def node_key(session: Session, node_id: str) -> PrivateKey:
    """This node's message-signing key (purpose "node"), generated on first use."""
    from tongban.keys import service as keys

    key, _row = keys.signing_key(session, "node", node_id)
    return key


_remotes: dict[tuple[str, str, str], Remote] = {}


def remote_for(settings: Settings) -> Remote | None:
    """The HTTP side of this node, or None for the embedded single node."""
    if settings.federation_file is None:
        return None
    fed = federation_for(settings)
    cache_key = (settings.node_id, str(settings.federation_file), fed.name)
    remote = _remotes.get(cache_key)
    if remote is None or remote.federation is not fed:
        remote = Remote(
            node_id=settings.node_id,
            federation=fed,
            transport=remote.transport if remote else HttpTransport(settings.exchange_timeout),
            key=lambda s: node_key(s, settings.node_id),
            settings=settings,
        )
        _remotes[cache_key] = remote
    return remote


def backoff_schedule(settings: Settings) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in settings.exchange_backoff.split(",") if v.strip())
    except ValueError:
        values = ()
    return values or BACKOFF_SECONDS


def deliver_due(factory: sessionmaker[Session], settings: Settings, limit: int = 100) -> int:
    """One dispatcher pass with this node's settings (`factory` is the node's: its
    sessions carry them to the handlers): local and remote delivery."""
    return dispatch_pending(
        factory,
        settings.served_jurisdictions,
        limit,
        remote=remote_for(settings),
        max_attempts=settings.exchange_max_attempts,
        backoff=backoff_schedule(settings),
        concurrency=settings.exchange_concurrency,
    )


# --- the dispatcher ------------------------------------------------------------------


def _claim(session: Session, now: datetime, limit: int) -> list[_Claimed]:
    """Claim up to `limit` due messages, oldest first, in one statement: leased (no other
    worker takes them for LEASE_SECONDS) and returned with what their lanes and their
    envelopes need (a batch is signed from these, without reading the rows again)."""
    due = (
        select(OutboxMessage.id)
        .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.created_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    stmt = (
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(due.scalar_subquery()))
        .values(next_attempt_at=now + timedelta(seconds=LEASE_SECONDS))
        .returning(
            OutboxMessage.id,
            OutboxMessage.type,
            OutboxMessage.source_jurisdiction,
            OutboxMessage.target_jurisdiction,
            OutboxMessage.payload,
            OutboxMessage.created_at,
        )
        .execution_options(synchronize_session=False)
    )
    rows = sorted(session.execute(stmt), key=lambda r: (r.created_at, str(r.id)))
    return [
        _Claimed(
            r.id,
            r.target_jurisdiction,
            ordering_key(r.type, r.payload or {}, r.id),
            r.type,
            r.source_jurisdiction,
            r.payload or {},
            r.created_at,
        )
        for r in rows
    ]


def envelope_of(
    session: Session | None, msg: OutboxMessage | _Claimed, node_id: str
) -> dict[str, Any]:
    """The wire form of `msg`, its payload completed by the type's enricher if any (which
    needs a `session`)."""
    payload = msg.payload
    enrich = _enrichers.get(msg.type)
    if enrich is not None:
        if session is None:
            raise RuntimeError(f"{msg.type} is completed when it leaves: a session is needed")
        payload = enrich(session, dict(payload), settings_of(session))
    return {
        "id": str(msg.id),
        "type": msg.type,
        "source_node": node_id,
        "source_jurisdiction": msg.source_jurisdiction,
        "target_jurisdiction": msg.target_jurisdiction,
        "created_at": msg.created_at.isoformat(),
        "version": version_for(msg.type),
        "payload": payload,
    }


def ordering_key(msg_type: str, payload: Mapping[str, Any], msg_id: uuid.UUID) -> str:
    """What a message is about, for its delivery order: messages with the same key to the
    same node leave one after another in the order they were queued, others may overtake
    each other. A type's own declaration (`lane`) comes first; else the key is a case
    (by number, also for the evidence messages about it),
    a work order, a jurisdiction's licence keys and status lists, or an evidence
    request; else the message itself."""

    declared = _lanes.get(msg_type)
    if declared is not None and (key := declared(payload)):
        return key

    def field(name: str) -> str | None:
        value = payload.get(name)
        return str(value) if isinstance(value, str | int) and value != "" else None

    family = msg_type.partition(".")[0]
    if family == "case" and (number := field("number")):
        return f"case:{number}"
    if number := field("case_number"):
        return f"case:{number}"
    if family == "ticket" and (number := field("number")):
        return f"ticket:{number}"
    if family == "licence" and (code := field("jurisdiction")):
        return f"licence:{code}"
    if request := field("request_id"):
        return f"evidence:{request}"
    return f"message:{msg_id}"


@dataclass(frozen=True, eq=False)
class _Claimed:
    """A claimed message: what its lane and its envelope need, as the claim returned it."""

    id: uuid.UUID
    target_jurisdiction: str
    key: str  # ordering_key
    type: str
    source_jurisdiction: str
    payload: dict[str, Any]
    created_at: datetime


def dispatch_pending(
    factory: sessionmaker[Session],
    served: str = "*",
    limit: int = 100,
    *,
    remote: Remote | None = None,
    max_attempts: int | None = None,
    backoff: tuple[float, ...] | None = None,
    concurrency: int | None = None,
) -> int:
    """Deliver due messages, each in its own transactions; returns how many were delivered.
    A failure is recorded on the message and retried with back-off, then parked as dead;
    a receiver's permanent refusal (4xx) parks it as dead at once.

    Messages for other nodes go over HTTP on up to `concurrency` threads (default: the
    remote's TONGBAN_EXCHANGE_CONCURRENCY; 1 = one at a time, in the order claimed):
    those with the same target node and `ordering_key` form one lane, sent one after
    another in the order they were queued; lanes run in parallel. Local deliveries run
    one at a time in the calling thread."""
    with factory() as session:
        claimed = _claim(session, utcnow(), limit)
        session.commit()
    policy = (max_attempts or MAX_ATTEMPTS, backoff or BACKOFF_SECONDS)
    keys: dict[str, PrivateKey] = {}  # this node's signing key, read once per pass
    if concurrency is None:
        concurrency = remote.settings.exchange_concurrency if remote is not None else 1
    # Messages for nodes that take batches go in batches: per node, its lanes are shared
    # out over a few streams (each lane wholly in one, in the order queued), and each
    # stream posts its batches one after another.
    streams: list[list[list[_Claimed]]] = []
    batched: set[uuid.UUID] = set()
    if remote is not None and remote.batch > 1:
        streams = _streams(claimed, served, remote, concurrency)
        batched = {c.id for stream in streams for chunk in stream for c in chunk}
    rest = [c for c in claimed if c.id not in batched]
    lanes: dict[tuple[str, str], list[uuid.UUID]] = {}
    local_ids: list[uuid.UUID] = []
    if remote is not None and concurrency > 1:
        for c in rest:
            if serves(c.target_jurisdiction, served):
                local_ids.append(c.id)
            else:
                node = remote.federation.node_for(c.target_jurisdiction)
                target = node.id if node is not None else c.target_jurisdiction
                lanes.setdefault((target, c.key), []).append(c.id)
        if len(lanes) + len(streams) > 1 and not _read_key(factory, remote, keys):
            # No key: one at a time, each failure recorded on its message.
            streams, rest, lanes, local_ids = [], claimed, {}, []
    if len(lanes) + len(streams) <= 1:  # in this thread; the others in the order claimed
        delivered = sum(
            _deliver_stream(factory, st, served, remote, keys, policy) for st in streams
        )
        return delivered + sum(
            _deliver_one(factory, c.id, served, remote, keys, policy) for c in rest
        )
    units: list[tuple[Callable[..., int], Any]] = [(_deliver_stream, st) for st in streams]
    units += [(_deliver_lane, ids) for ids in lanes.values()]
    delivered = 0
    workers = min(concurrency, len(units))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="exchange") as pool:
        futures = [
            pool.submit(fn, factory, work, served, remote, keys, policy) for fn, work in units
        ]
        errors: list[BaseException] = []
        for msg_id in local_ids:
            try:
                delivered += _deliver_one(factory, msg_id, served, remote, keys, policy)
            except Exception as exc:  # noqa: BLE001 - raised after the lanes are done
                errors.append(exc)
                break
        for future in futures:
            try:
                delivered += future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. the database went away
                errors.append(exc)
    if errors:
        raise errors[0]
    return delivered


#: Nodes that answered a batch with "no such route" (a release before batches), until
#: when (time.monotonic()) their messages go one by one; then batches are tried again.
_no_batches: dict[str, float] = {}
NO_BATCH_RETRY_SECONDS = 600.0
#: Most bytes of envelopes in one batch (the receiver takes up to api.MAX_BATCH_BYTES).
BATCH_BYTES = 16 * 1024 * 1024
#: Fewest messages that open one more parallel stream of batches to a node.
STREAM_MIN = 16


def takes_batches(node_id: str) -> bool:
    """Whether messages to `node_id` go in batches (False for a while after it answered
    a batch with 404/405: a node of an earlier release)."""
    until = _no_batches.get(node_id)
    return until is None or time.monotonic() >= until


def _streams(
    claimed: list[_Claimed], served: str, remote: Remote, concurrency: int
) -> list[list[list[_Claimed]]]:
    """The batches of a pass, as streams: per target node that takes batches, its
    messages (in the order claimed) shared out by lane over one stream per STREAM_MIN
    messages (at most `concurrency`, at most one per lane), each cut into batches of
    `remote.batch`.
    A lane is never split over two streams, so its messages still leave in order."""
    per_node: dict[str, list[_Claimed]] = {}
    for c in claimed:
        if serves(c.target_jurisdiction, served):
            continue
        node = remote.federation.node_for(c.target_jurisdiction)
        if node is None or node.id == remote.node_id or not takes_batches(node.id):
            continue  # one by one: NoRoute and misconfiguration are recorded there
        per_node.setdefault(node.id, []).append(c)
    out: list[list[list[_Claimed]]] = []
    for msgs in per_node.values():
        # As many streams as there are STREAM_MIN messages (and lanes) for, up to
        # `concurrency`: a receiver applies one batch on one backend, one message after
        # another, so 100 messages in one batch took longer than 100 sent one by one
        # over 8 parallel requests (issue 14) — many cores and backends sit idle.
        lanes = len({c.key for c in msgs})
        n = max(1, min(concurrency, lanes, -(-len(msgs) // STREAM_MIN)))
        lane_stream: dict[str, int] = {}
        parts: list[list[_Claimed]] = [[] for _ in range(n)]
        for c in msgs:
            k = lane_stream.setdefault(c.key, len(lane_stream) % n)
            parts[k].append(c)
        for part in parts:
            if part:
                out.append([part[i : i + remote.batch] for i in range(0, len(part), remote.batch)])
    return out


def _deliver_stream(
    factory: sessionmaker[Session],
    batches: list[list[_Claimed]],
    served: str,
    remote: Remote | None,
    keys: dict[str, PrivateKey],
    policy: tuple[int, tuple[float, ...]],
) -> int:
    """One stream's batches, one after another (on a worker thread or the caller's)."""
    assert remote is not None
    return sum(_deliver_batch(factory, msgs, served, remote, keys, policy) for msgs in batches)


def _deliver_batch(
    factory: sessionmaker[Session],
    claimed: list[_Claimed],
    served: str,
    remote: Remote,
    keys: dict[str, PrivateKey],
    policy: tuple[int, tuple[float, ...]],
) -> int:
    """Deliver messages to one node in one request: signed each on its own from what the
    claim returned (the rows are not read again), the answer's outcomes recorded in one
    session. A session is opened before only to read the signing key the first time or
    for a type whose payload is completed when it leaves (`outgoing`). Messages to a node
    that takes no batches go one by one."""
    failures: list[tuple[uuid.UUID, str, bool]] = []
    envs: list[tuple[uuid.UUID, str, dict[str, Any]]] = []
    todo = list(claimed)
    with ExitStack() as stack:
        session: Session | None = None
        if "key" not in keys or any(m.type in _enrichers for m in todo):
            session = stack.enter_context(factory())
        try:
            if "key" not in keys:
                assert session is not None
                keys["key"] = remote.key(session)
                session.commit()  # the key may have been generated just now
        except Exception as exc:  # noqa: BLE001 - recorded on each message
            assert session is not None
            session.rollback()
            todo, failures = [], [(m.id, f"{type(exc).__name__}: {exc}", False) for m in todo]
        for m in todo:
            node = remote.federation.node_for(m.target_jurisdiction)
            try:
                env = envelope_of(session, m, remote.node_id)
            except Exception as exc:  # noqa: BLE001 - e.g. an attachment missing on disk
                failures.append((m.id, f"{type(exc).__name__}: {exc}", False))
                continue
            envs.append((m.id, node.id if node is not None else "", env))
        if session is not None:
            # No transaction open while the batch is on the wire (see _send_remote).
            session.rollback()
    delivered: list[uuid.UUID] = []
    singly: list[uuid.UUID] = []
    node_id = envs[0][1] if envs else ""
    node = remote.federation.nodes.get(node_id)
    # Each message signed on its own, for the node's single inbox (transport.signed_item).
    items = (
        [(mid, signed_item(env, keys["key"], node.inbox_url)) for mid, _n, env in envs]
        if node
        else []
    )
    for chunk in _by_bytes(items):
        if node is None or not takes_batches(node.id):
            singly += [mid for mid, _i in chunk]
            continue
        results = remote.transport.deliver_items([item for _m, item in chunk], node)
        if results is None:
            # 404/405: a node of an earlier release (or 413: this batch too large for it).
            _no_batches[node.id] = time.monotonic() + NO_BATCH_RETRY_SECONDS
            log.warning("node %s takes no batches: messages go one by one", node.id)
            singly += [mid for mid, _i in chunk]
            continue
        for (mid, _i), result in zip(chunk, results, strict=True):
            if result.outcome is Outcome.DELIVERED:
                delivered.append(mid)
            else:
                failures.append((mid, result.detail, result.outcome is Outcome.REFUSED))
    _record_outcomes(factory, delivered, failures, policy)
    return len(delivered) + sum(
        _deliver_one(factory, mid, served, remote, keys, policy) for mid in singly
    )


def _by_bytes(
    items: list[tuple[uuid.UUID, dict[str, Any]]],
) -> list[list[tuple[uuid.UUID, dict[str, Any]]]]:
    """Signed `items` cut where a batch would exceed BATCH_BYTES of message bodies (a
    message larger than that goes alone)."""
    out: list[list[tuple[uuid.UUID, dict[str, Any]]]] = []
    size = 0
    for item in items:
        n = len(item[1]["body"])
        if not out or size + n > BATCH_BYTES:
            out.append([])
            size = 0
        out[-1].append(item)
        size += n
    return out


def _record_outcomes(
    factory: sessionmaker[Session],
    delivered: list[uuid.UUID],
    failures: list[tuple[uuid.UUID, str, bool]],
    policy: tuple[int, tuple[float, ...]],
) -> None:
    """A batch's bookkeeping in one transaction: the delivered marked in one statement,
    each failure recorded (retry with back-off, or dead) as for a single message."""
    if not delivered and not failures:
        return
    with factory() as session:
        if delivered:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(delivered), OutboxMessage.status == "pending")
                .values(status="delivered", delivered_at=utcnow(), last_error=None)
                .execution_options(synchronize_session=False)
            )
        for mid, error, dead in failures:
            _fail(session, mid, error, policy, dead=dead)
        session.commit()


def _read_key(factory: sessionmaker[Session], remote: Remote, keys: dict[str, PrivateKey]) -> bool:
    """Read (or generate) the signing key before the threads start, so that they share
    it and none of them writes it; False when it cannot be read."""
    with factory() as session:
        try:
            keys["key"] = remote.key(session)
            session.commit()  # the key may have been generated just now
        except Exception:  # noqa: BLE001 - the sequential path records it on each message
            session.rollback()
            log.exception("cannot read this node's signing key")
            return False
    return True


def _deliver_lane(
    factory: sessionmaker[Session],
    ids: list[uuid.UUID],
    served: str,
    remote: Remote | None,
    keys: dict[str, PrivateKey],
    policy: tuple[int, tuple[float, ...]],
) -> int:
    """One lane's messages, one after another (on a worker thread)."""
    return sum(_deliver_one(factory, msg_id, served, remote, keys, policy) for msg_id in ids)


def _deliver_one(
    factory: sessionmaker[Session],
    msg_id: uuid.UUID,
    served: str,
    remote: Remote | None,
    keys: dict[str, PrivateKey],
    policy: tuple[int, tuple[float, ...]],
) -> int:
    """Deliver one message in its own sessions; 1 when delivered, else 0 (a failure is
    recorded on the message)."""
    with factory() as session:
        msg = session.get(OutboxMessage, msg_id)
        if msg is None or msg.status != "pending":
            return 0
        local = serves(msg.target_jurisdiction, served)
        if not local and remote is not None:
            result = _send_remote(session, msg, remote, keys)  # ends its transaction first
            if result.outcome is Outcome.DELIVERED:
                _mark_delivered(factory, msg_id)
                return 1
            _record_failure(
                factory, msg_id, result.detail, policy, dead=result.outcome is Outcome.REFUSED
            )
            return 0
        try:
            if not local:
                raise NoRoute(f"no node serves jurisdiction {msg.target_jurisdiction}")
            apply_locally(session, msg)
            msg.status = "delivered"
            msg.delivered_at = utcnow()
            session.commit()
            return 1
        except Refused as exc:  # never applicable: parked as dead with its reason
            session.rollback()
            _record_failure(
                factory, msg_id, f"Refused {exc.reason}: {exc.detail}", policy, dead=True
            )
            return 0
        except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
            session.rollback()
            _record_failure(factory, msg_id, f"{type(exc).__name__}: {exc}", policy)
            return 0


def _send_remote(
    session: Session, msg: OutboxMessage, remote: Remote, keys: dict[str, PrivateKey]
) -> Result:
    node = remote.federation.node_for(msg.target_jurisdiction)
    if node is None:
        return Result(Outcome.RETRY, f"NoRoute: no node serves {msg.target_jurisdiction}")
    if node.id == remote.node_id:
        return Result(
            Outcome.REFUSED,
            f"node {node.id} serves {msg.target_jurisdiction} by the federation file "
            "but not by TONGBAN_SERVED_JURISDICTIONS",
        )
    try:
        env = envelope_of(session, msg, remote.node_id)
        if "key" not in keys:
            keys["key"] = remote.key(session)
            session.commit()  # the key may have been generated just now
        key = keys["key"]
    except Exception as exc:  # noqa: BLE001 - e.g. an attachment missing on disk
        return Result(Outcome.RETRY, f"{type(exc).__name__}: {exc}")
    # End the read transaction before the network call: on SQLite every transaction holds
    # the write lock (BEGIN IMMEDIATE), and a slow peer must not stall this node's writes.
    session.rollback()
    return remote.transport.deliver(env, node, key)


def _mark_delivered(factory: sessionmaker[Session], msg_id: uuid.UUID) -> None:
    with factory() as session:
        msg = session.get(OutboxMessage, msg_id)
        if msg is not None and msg.status == "pending":
            msg.status = "delivered"
            msg.delivered_at = utcnow()
            msg.last_error = None
            session.commit()


def _record_failure(
    factory: sessionmaker[Session],
    msg_id: uuid.UUID,
    error: str,
    policy: tuple[int, tuple[float, ...]] = (MAX_ATTEMPTS, BACKOFF_SECONDS),
    *,
    dead: bool = False,
) -> None:
    with factory() as session:
        _fail(session, msg_id, error, policy, dead=dead)
        session.commit()


def _fail(
    session: Session,
    msg_id: uuid.UUID,
    error: str,
    policy: tuple[int, tuple[float, ...]],
    *,
    dead: bool = False,
) -> None:
    """Record a failed attempt on the message: retried after the back-off, or dead (at
    once when `dead`, else after the last attempt)."""
    max_attempts, backoff = policy
    msg = session.get(OutboxMessage, msg_id)
    if msg is None or msg.status != "pending":
        # (delivered meanwhile by a worker that took it after this one's lease ran out)
        return
    msg.attempts += 1
    msg.last_error = error[:2000]
    if dead or msg.attempts >= max_attempts:
        msg.status = "dead"
        msg.dead_at = utcnow()
        log.error(
            "message %s (%s) is dead after %s attempt(s): %s",
            msg.id,
            msg.type,
            msg.attempts,
            msg.last_error,
        )
    else:
        delay = backoff[min(msg.attempts - 1, len(backoff) - 1)]
        msg.next_attempt_at = utcnow() + timedelta(seconds=delay)
        log.warning(
            "message %s (%s) failed, retry in %ss: %s", msg.id, msg.type, delay, msg.last_error
        )


# --- operating the outbox ------------------------------------------------------------


def dead_letters(session: Session, limit: int = 500) -> list[OutboxMessage]:
    """Messages parked as dead, oldest first."""
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == "dead")
            .order_by(OutboxMessage.created_at)
            .limit(limit)
        )
    )


def replay(session: Session, ids: list[uuid.UUID] | None, operator: str) -> list[OutboxMessage]:
    """Put dead messages (the given ones, or all with None) back to pending with their
    attempts reset; who and when is recorded on each, logged, and an entry of the audit
    chain per message ("change", message.replayed)."""
    q = select(OutboxMessage).where(OutboxMessage.status == "dead")
    if ids is not None:
        q = q.where(OutboxMessage.id.in_(ids))
    rows = list(session.scalars(q))
    if ids is not None:
        found = {m.id for m in rows}
        missing = [str(i) for i in ids if i not in found]
        if missing:
            from tongban.errors import NotFound

            raise NotFound("不在死信列表中：" + "、".join(missing), type="not-dead")
    now = utcnow()
    before = {m.id: (m.attempts, m.dead_at) for m in rows}
    for m in rows:
        m.status = "pending"
        m.attempts = 0
        m.next_attempt_at = now
        m.dead_at = None
        m.replays = (m.replays or 0) + 1
        m.replayed_at = now
        m.replayed_by = operator[:80]
        log.warning("message %s (%s) replayed by %s", m.id, m.type, operator)
        # In the audit chain as a change entry (the audit context subscribes).
        changed = events.Changed(
            "message.replayed",
            f"message:{m.id}",
            operator if ":" in operator else f"operator:{operator[:80]}",
            before={"status": "dead", "attempts": before[m.id][0], "dead_at": before[m.id][1]},
            after={"status": "pending", "replays": m.replays},
            detail={"type": m.type},
        )
        events.publish(session, changed)
    session.flush()
    return rows


def status_counts(session: Session) -> dict[str, int]:
    """Outbox messages by status, and how many the inbox holds."""
    counts = {"pending": 0, "delivered": 0, "dead": 0}
    rows = session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    )
    for status, n in rows:
        counts[str(status)] = int(n)
    counts["inbox"] = int(session.scalar(select(func.count()).select_from(InboxMessage)) or 0)
    return counts
