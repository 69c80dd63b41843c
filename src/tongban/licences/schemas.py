"""Request and response bodies of the licences API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tongban.types import SaneDatetime

#: Largest presentation accepted for verification (a licence is ~2 KB).
MAX_PRESENTATION = 64 * 1024


class FieldPublic(BaseModel):
    name: str
    label: str
    personal: bool
    required: bool


class LicenceTypePublic(BaseModel):
    code: str
    name: str
    type_code: str = Field(description="GB/T 36904 licence type code")
    authority_type: str
    holders: list[str]
    validity_years: int | None
    vct: str
    fields: list[FieldPublic]


class LicenceIssue(BaseModel):
    """A licence to issue (directly, or one row of a bulk issuance)."""

    type_code: str = Field(max_length=40)
    holder_identifier: str = Field(max_length=40, description="ID number or credit code")
    holder_name: str = Field(max_length=120)
    holder_type: str | None = Field(default=None, description="resident or enterprise")
    claims: dict[str, Any] = Field(default_factory=dict)
    valid_from: SaneDatetime | None = None
    valid_until: SaneDatetime | None = None


class StatusChange(BaseModel):
    action: str = Field(description="suspend, reinstate or revoke")
    reason: str = Field(default="", max_length=2000)


class EventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    seq: int
    action: str
    from_status: str | None
    to_status: str
    actor_name: str
    reason: str
    at: datetime


class LicencePublic(BaseModel):
    id: uuid.UUID
    identifier: str
    type_code: str
    type_name: str
    holder_type: str
    holder_name: str
    holder_identifier: str
    jurisdiction_code: str
    authority_name: str
    claims: dict[str, Any]
    issued_at: datetime
    valid_from: datetime
    valid_until: datetime | None
    status: str
    status_list: dict[str, Any] = Field(description="{idx, uri} of its status-list entry")
    kid: str
    alg: str
    source: str
    sd_jwt: str = Field(description="The issued SD-JWT VC, every disclosure included")
    events: list[EventPublic]


class VerifyRequest(BaseModel):
    presentation: str = Field(max_length=MAX_PRESENTATION, description="compact SD-JWT VC")


class VerifyResult(BaseModel):
    valid: bool
    reason: str | None = Field(description="null, or the rejection reason code")
    reason_text: str
    detail: str
    claims: dict[str, Any]
    issuer: str | None
    jurisdiction: str | None
    licence_id: str | None
    vct: str | None
    type: str | None
    type_name: str | None
    issued_at: datetime | None
    expires_at: datetime | None
    status: str | None


class PresentationCreate(BaseModel):
    disclose: list[str] = Field(default_factory=list, description="personal claims to show")


class PresentationPublic(BaseModel):
    licence_id: uuid.UUID
    identifier: str
    disclosed: list[str]
    presentation: str


class StatusListRef(BaseModel):
    jurisdiction: str
    list: int
    uri: str
