"""The message centre's tables: each account's inbox, its contact details and choice of
channels, and the durable outbox of deliveries over those channels."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tongban.db import Base, UTCDateTime, new_id, utcnow


class Message(Base):
    """站内信: one message to one account. The unread count of the header is one
    index-only count on (account_id, read_at); the inbox pages on (account_id,
    created_at). `dedupe_key` makes a step heard twice one message."""

    __tablename__ = "notify_message"
    __table_args__ = (
        UniqueConstraint("account_id", "dedupe_key"),
        Index("ix_notify_message_unread", "account_id", "read_at"),
        Index("ix_notify_message_inbox", "account_id", "created_at"),
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"))
    topic: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    #: The page of the record the message is about (a path of this node).
    link: Mapped[str | None] = mapped_column(String(300))
    record_kind: Mapped[str | None] = mapped_column(String(40))
    record_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    dedupe_key: Mapped[str] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Contact(Base):
    """An account's contact details and the outbound channels it chose (none by default:
    the message centre always has every message)."""

    __tablename__ = "notify_contact"
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))
    by_email: Mapped[bool] = mapped_column(Boolean, default=False)
    by_sms: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Delivery(Base):
    """One message to send over one channel (the outbox): written in the transaction of
    the step that caused the message, sent by the worker, retried with backoff until it
    is sent — never dropped. The address is the one chosen when the message was made."""

    __tablename__ = "notify_delivery"
    __table_args__ = (Index("ix_notify_delivery_due", "state", "next_attempt_at"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("notify_message.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    address: Mapped[str] = mapped_column(String(254))
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
