"""The outbox, the inbox and the dispatcher.

Whatever one jurisdiction asks of another is a message written to the outbox in the
same transaction as the change that caused it. The dispatcher delivers it: to this
node's own inbox when this node serves the target jurisdiction (the embedded default
serves them all), otherwise to the target node over HTTP (see the federation work).
Applying a message is idempotent by its id.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tongban.db import utcnow
from tongban.exchange.models import InboxMessage, OutboxMessage

log = logging.getLogger(__name__)

Handler = Callable[[Session, dict[str, Any], OutboxMessage | InboxMessage], None]
_handlers: dict[str, Handler] = {}

#: Back-off between delivery attempts, by attempt number; the last applies thereafter.
BACKOFF_SECONDS = (1, 5, 30, 120, 600)
MAX_ATTEMPTS = 8


class NoRoute(Exception):
    """No node known for the target jurisdiction."""


def handler(message_type: str) -> Callable[[Handler], Handler]:
    """Register the function that applies messages of `message_type` at the receiver."""

    def deco(fn: Handler) -> Handler:
        _handlers[message_type] = fn
        return fn

    return deco


def send(
    session: Session,
    message_type: str,
    source_jurisdiction: str,
    target_jurisdiction: str,
    payload: dict[str, Any],
) -> OutboxMessage:
    """Queue a message in the caller's transaction; it leaves only if that commits."""
    msg = OutboxMessage(
        type=message_type,
        source_jurisdiction=source_jurisdiction,
        target_jurisdiction=target_jurisdiction,
        payload=payload,
    )
    session.add(msg)
    session.flush()
    return msg


def serves(jurisdiction_code: str, served: str = "*") -> bool:
    """Whether this node serves `jurisdiction_code` ('*' = every jurisdiction)."""
    return served == "*" or jurisdiction_code in {s.strip() for s in served.split(",")}


def apply_locally(session: Session, msg: OutboxMessage) -> bool:
    """Apply `msg` through this node's inbox; False when it had been applied already."""
    if session.get(InboxMessage, msg.id) is not None:
        return False
    fn = _handlers.get(msg.type)
    if fn is None:
        raise LookupError(f"no handler for message type {msg.type}")
    fn(session, msg.payload, msg)
    session.add(
        InboxMessage(
            id=msg.id,
            type=msg.type,
            source_jurisdiction=msg.source_jurisdiction,
            target_jurisdiction=msg.target_jurisdiction,
        )
    )
    session.flush()
    return True


def _claim(session: Session, now: datetime, limit: int) -> list[OutboxMessage]:
    q = (
        select(OutboxMessage)
        .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.created_at)
        .limit(limit)
    )
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    return list(session.scalars(q))


def dispatch_pending(factory: sessionmaker[Session], served: str = "*", limit: int = 100) -> int:
    """Deliver due messages, each in its own transaction; returns how many were delivered.
    A failure is recorded on the message and retried with back-off, then parked as dead."""
    delivered = 0
    with factory() as session:
        ids = [m.id for m in _claim(session, utcnow(), limit)]
        session.rollback()
    for msg_id in ids:
        with factory() as session:
            msg = session.get(OutboxMessage, msg_id)
            if msg is None or msg.status != "pending":
                continue
            try:
                if not serves(msg.target_jurisdiction, served):
                    raise NoRoute(f"no node serves jurisdiction {msg.target_jurisdiction}")
                apply_locally(session, msg)
                msg.status = "delivered"
                msg.delivered_at = utcnow()
                session.commit()
                delivered += 1
            except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
                session.rollback()
                _record_failure(factory, msg_id, exc)
    return delivered


def _record_failure(factory: sessionmaker[Session], msg_id: uuid.UUID, exc: Exception) -> None:
    with factory() as session:
        msg = session.get(OutboxMessage, msg_id)
        if msg is None:
            return
        msg.attempts += 1
        msg.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if msg.attempts >= MAX_ATTEMPTS:
            msg.status = "dead"
            log.error(
                "message %s (%s) is dead after %s attempts: %s",
                msg.id,
                msg.type,
                msg.attempts,
                msg.last_error,
            )
        else:
            delay = BACKOFF_SECONDS[min(msg.attempts - 1, len(BACKOFF_SECONDS) - 1)]
            msg.next_attempt_at = utcnow() + timedelta(seconds=delay)
            log.warning(
                "message %s (%s) failed, retry in %ss: %s", msg.id, msg.type, delay, msg.last_error
            )
        session.commit()
