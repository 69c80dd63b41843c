"""What the message centre's API reads and answers."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class MessagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    topic: str
    title: str
    body: str
    link: str | None
    record_kind: str | None
    record_id: uuid.UUID | None
    created_at: datetime
    read_at: datetime | None


class InboxPage(BaseModel):
    items: list[MessagePublic]
    page: int
    pages: int
    total: int
    unread: int


class UnreadCount(BaseModel):
    unread: int


class MarkedRead(BaseModel):
    marked: int


class PreferencesPublic(BaseModel):
    email: str | None
    phone: str | None
    by_email: bool
    by_sms: bool
    #: The channels this node can send over.
    available: list[str]


class PreferencesUpdate(BaseModel):
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=20)
    by_email: bool = False
    by_sms: bool = False
