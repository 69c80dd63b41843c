"""What crosses nodes for a virtual window: the two signed query types' payloads and
answers (exchange/query.py), parsed before anything is applied."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field

Op = Literal[
    "sync",
    "join",
    "leave",
    "form",
    "chat",
    "document",
    "recording",
    "licence",
    "record_identity",
    "submit",
    "end",
    "signal",
]


class StartAsk(BaseModel):
    """The clerk's node asks the competent node to open a session and queue it."""

    matter_code: str = Field(max_length=40)
    competent_jurisdiction: str = Field(pattern=r"^\d{6}$")
    competent_city: str | None = Field(default=None, pattern=r"^\d{6}$")
    origin_jurisdiction: str = Field(pattern=r"^\d{6}$")
    origin_city: str = Field(pattern=r"^\d{6}$")
    clerk_ref: str = Field(min_length=1, max_length=64)
    clerk_name: str = Field(min_length=1, max_length=80)
    #: SHA-256 (hex) of the session secret the clerk's node keeps.
    secret_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class StartAnswer(BaseModel):
    session_id: uuid.UUID
    number: str


class ActAsk(BaseModel):
    """One step of the clerk on a session, relayed by the clerk's node, with the
    session's secret and the clerk it belongs to; every answer is the session's view."""

    session_id: uuid.UUID
    secret: str = Field(min_length=32, max_length=64)
    clerk_ref: str = Field(min_length=1, max_length=64)
    op: Op
    #: The op's arguments (checked by the service: field names, lengths, enums).
    args: dict[str, Any] = Field(default_factory=dict)
    since: int = Field(default=0, ge=0)
    signals_since: int = Field(default=0, ge=0)


class ViewAsk(BaseModel):
    """A read of the session's view by the clerk's node (the page's poll), with the
    session's secret and its clerk: answered, it is not recorded (it changes nothing)."""

    session_id: uuid.UUID
    secret: str = Field(min_length=32, max_length=64)
    clerk_ref: str = Field(min_length=1, max_length=64)
    since: int = Field(default=0, ge=0)
    signals_since: int = Field(default=0, ge=0)


class ViewAnswer(BaseModel):
    """The session as one side sees it (service.view)."""

    view: dict[str, Any]


class ChangedAsk(BaseModel):
    """The competent node tells the clerk's node that a session changed (push.py): only
    its id; the clerk's node reads the session through the relayed view as always."""

    session_id: uuid.UUID


class ChangedAnswer(BaseModel):
    woken: bool
