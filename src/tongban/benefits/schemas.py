"""What the benefits API speaks (pydantic; separate from the ORM classes)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tongban.kernel.history import EventPublic


class OfferPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    number: str
    rule_id: str
    rule_version: int
    name: str
    entitlement: str
    state: str
    state_label: str
    trace: dict[str, Any]
    created_at: datetime
    events: list[EventPublic] = []


class ReviewPublic(BaseModel):
    id: uuid.UUID
    offer_number: str
    subject_name: str
    subject_identifier: str
    rule_id: str
    rule_version: int
    name: str
    state: str
    state_label: str
    offer_state: str
    trace: dict[str, Any]
    created_at: datetime
    decided_at: datetime | None
    events: list[EventPublic] = []


class ReviewDecision(BaseModel):
    decision: str = Field(description="keep（继续发放）或 stop（停发）", max_length=10)
    reason: str = Field(default="", max_length=500)


class RulePublic(BaseModel):
    rule_id: str
    version: int
    state: str
    name: str
    definition: dict[str, Any]
    created_by: str
    created_at: datetime
    activated_at: datetime | None


class DraftIn(BaseModel):
    #: Condition index (0-based, as a string) -> the new value as typed.
    values: dict[str, str] = Field(max_length=20)


class PreviewPublic(BaseModel):
    rule_id: str
    version: int
    against: int
    evaluated: int
    counts: dict[str, int]
    samples: dict[str, list[dict[str, Any]]]


class ActivationOut(BaseModel):
    evaluated: int
    offers: int
    reviews: int
