from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tongban.db import Base, UTCDateTime, new_id, utcnow


class OutboxMessage(Base):
    """A message to another jurisdiction, written in the same transaction as its cause."""

    # Audit chain (tongban.audit.hook): one entry per message queued; payload as a digest.
    __audit_kind__ = "message.sent"
    __audit_subject__ = ("message", "id")
    __audit_fields__ = ("type", "source_jurisdiction", "target_jurisdiction")
    __audit_digest__ = ("payload",)

    __tablename__ = "outbox_message"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(String(60))
    source_jurisdiction: Mapped[str] = mapped_column(String(6))
    target_jurisdiction: Mapped[str] = mapped_column(String(6), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: pending | delivered | dead
    status: Mapped[str] = mapped_column(String(12), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When it went to the dead-letter list (attempts exhausted or refused for good).
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Operator replays from the dead-letter list: how many, the last one when and by whom.
    replays: Mapped[int] = mapped_column(Integer, default=0)
    replayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replayed_by: Mapped[str | None] = mapped_column(String(80))


class InboxMessage(Base):
    """A message received and applied; its id makes delivery idempotent."""

    # Audit chain (tongban.audit.hook): one entry per message applied.
    __audit_kind__ = "message.applied"
    __audit_subject__ = ("message", "id")
    __audit_fields__ = ("type", "source_jurisdiction", "target_jurisdiction", "source_node")

    __tablename__ = "inbox_message"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    type: Mapped[str] = mapped_column(String(60))
    source_jurisdiction: Mapped[str] = mapped_column(String(6))
    target_jurisdiction: Mapped[str] = mapped_column(String(6))
    #: The node that sent it (None: applied locally, from this node's own outbox).
    source_node: Mapped[str | None] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ExchangeQuery(Base):
    """One synchronous query between nodes (exchange/query.py), as this node took part in
    it: asked (another node answered), answered (another node asked) or local (asked and
    answered here). Both nodes keep a row under the same id; the person it concerns is
    only a keyed digest here (their own data-use log names them)."""

    # Audit chain (tongban.audit.hook): one entry per query asked or answered.
    __audit_kind__ = "exchange.query"
    __audit_subject__ = ("query", "id")
    __audit_fields__ = (
        "type",
        "role",
        "asking_node",
        "asking_jurisdiction",
        "answering_node",
        "answering_jurisdiction",
        "subject_digest",
        "outcome",
        "reason",
        "duration_ms",
    )

    __tablename__ = "exchange_query"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    type: Mapped[str] = mapped_column(String(60))
    #: asked | answered | local
    role: Mapped[str] = mapped_column(String(10))
    #: None: this node.
    asking_node: Mapped[str | None] = mapped_column(String(40))
    asking_jurisdiction: Mapped[str] = mapped_column(String(6))
    #: None: this node; unknown when no node serves the target.
    answering_node: Mapped[str | None] = mapped_column(String(40))
    answering_jurisdiction: Mapped[str] = mapped_column(String(6))
    #: HMAC-SHA-256 of the subject's identifier under this node's secret (None: no person).
    subject_digest: Mapped[str | None] = mapped_column(String(64), index=True)
    #: answered | refused | unavailable | unverified
    outcome: Mapped[str] = mapped_column(String(12))
    #: The refusal's problem type or why no answer came (timeout, down, no-route …).
    reason: Mapped[str | None] = mapped_column(String(80))
    duration_ms: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
