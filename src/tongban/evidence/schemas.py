"""Pydantic shapes of the evidence API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class EvidenceKindPublic(BaseModel):
    code: str
    label: str
    description: str
    subjects: list[str]
    provider: str
    fields: dict[str, str]
    requester_types: list[str]


class PurposePublic(BaseModel):
    code: str
    label: str
    kinds: list[str]
    matters: list[str]
    authority_types: list[str]


class EvidenceCataloguePublic(BaseModel):
    kinds: list[EvidenceKindPublic]
    purposes: list[PurposePublic]


class EvidenceRequestCreate(BaseModel):
    kind: str = Field(min_length=1, max_length=40)
    purpose: str = Field(min_length=1, max_length=40)
    #: For kinds whose data may live elsewhere than the applicant's home (社保, 证照).
    provider_jurisdiction: str | None = Field(default=None, min_length=6, max_length=6)


class EvidenceRequestPublic(BaseModel):
    id: uuid.UUID
    case_number: str
    kind: str
    kind_label: str
    purpose: str
    purpose_label: str
    provider_jurisdiction: str
    requester_authority_name: str
    officer_name: str
    status: str
    reason_code: str | None
    reason: str | None
    data: dict[str, Any] | None
    requested_at: datetime
    answered_at: datetime | None
    #: False when an earlier answered (or pending) request was returned (once-only).
    created: bool = True


class DataAccessPublic(BaseModel):
    at: datetime
    requester_authority_name: str
    requester_jurisdiction: str
    officer_name: str
    kind: str
    kind_label: str
    fields: list[str]
    purpose: str
    purpose_label: str
    case_number: str
    matter_name: str
    provider_jurisdiction: str
    outcome: str
    outcome_label: str
    reason_code: str | None
    reason: str | None
    #: Shown to supervisors only, masked.
    subject_masked: str | None = None


class ConsentPublic(BaseModel):
    case_number: str
    scopes: list[str] = Field(description="kinds consent was given for at submission")
    active_scopes: list[str] = Field(description="kinds it still covers")
    withdrawals: list[dict[str, str]] = Field(description="withdrawn kinds: kind, at, by")
    given_at: datetime
    channel: str


class ConsentWithdraw(BaseModel):
    kind: str = Field(max_length=40)
