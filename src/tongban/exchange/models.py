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
