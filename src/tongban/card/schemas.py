"""Request and response bodies of the card API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tongban.card.domain import REASON_MAX


class CardEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    action: str
    from_state: str | None
    to_state: str
    actor_name: str
    actor_role: str
    comment: str
    at: datetime


class CardPublic(BaseModel):
    """A card as its holder, or a window clerk of its jurisdiction, sees it."""

    id: uuid.UUID
    number: str
    jurisdiction_code: str
    city_code: str
    holder_name: str
    #: Masked (3201**********1234).
    holder_id_number: str
    generation: int
    transport: bool
    state: Literal["normal", "lost", "replaced", "cancelled"]
    state_label: str
    concessions: list[str]
    issued_at: datetime
    replaces: str | None = Field(description="number of the card this one replaced")
    version: int
    allowed_actions: list[str]
    events: list[CardEventPublic]


class CardActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["report_lost", "found", "replace", "cancel"]
    reason: str = Field(default="", max_length=REASON_MAX)


class CardActionOut(BaseModel):
    card: CardPublic
    replacement: CardPublic | None = None


class CardSearch(BaseModel):
    """A window clerk's search for a walk-in's cards: an ID number, so it is a body."""

    model_config = ConfigDict(extra="forbid")

    id_number: str = Field(min_length=15, max_length=18)
