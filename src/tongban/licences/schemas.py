"""Request and response bodies of the licences API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

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


class LicenceSearch(BaseModel):
    """An officer's search: the query may be a holder's ID number, so it is a body."""

    model_config = ConfigDict(extra="forbid")
    q: str | None = Field(default=None, min_length=1, max_length=60)
    status: Literal["valid", "suspended", "revoked"] | None = None


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
    cnf_kid: str | None = Field(
        default=None, description="thumbprint of the holder device key in cnf (null: unbound)"
    )
    events: list[EventPublic]


class VerifyRequest(BaseModel):
    presentation: str = Field(
        max_length=MAX_PRESENTATION,
        description="compact SD-JWT VC, optionally with a KB-JWT after the last '~'",
    )
    require_binding: bool | None = Field(
        default=None,
        description="refuse a presentation without a valid KB-JWT by the holder's device key"
        " (null: the deployment's default; always true where unbound presentation is off)",
    )
    nonce: str | None = Field(
        default=None,
        max_length=200,
        description="the challenge this verifier gave the holder; null: time-window mode",
    )
    audience: str | None = Field(
        default=None, max_length=300, description="this verifier's id, accepted as KB-JWT aud"
    )


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
    binding: str | None = Field(
        default=None,
        description="valid licences: holder_bound (KB-JWT by the cnf key verified) or unbound"
        " (accepted as a bearer presentation)",
    )
    binding_text: str = ""
    binding_required: bool = False


class HolderKeyCreate(BaseModel):
    jwk: dict[str, Any] = Field(
        description="public JWK of the device key: EC P-256 (ES256) or OKP Ed25519"
    )
    label: str = Field(default="", max_length=80, description="the holder's name for the device")


class HolderKeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    thumbprint: str = Field(description="RFC 7638 thumbprint; licences name it as cnf_kid")
    alg: str
    label: str
    jwk: dict[str, Any]
    created_at: datetime
    revoked_at: datetime | None


class HolderKeyRegistered(BaseModel):
    key: HolderKeyPublic
    rebound: list[uuid.UUID] = Field(description="licences re-issued bound to this key")


class PresentationCreate(BaseModel):
    disclose: list[str] = Field(default_factory=list, description="personal claims to show")


class PresentationPublic(BaseModel):
    licence_id: uuid.UUID
    identifier: str
    disclosed: list[str]
    presentation: str = Field(
        description="ends with '~'; a bound licence's holder appends a KB-JWT signed by"
        " the device key named by cnf_kid (typ kb+jwt; iat, aud, nonce, sd_hash)"
    )
    cnf_kid: str | None = Field(
        default=None, description="thumbprint of the device key this licence is bound to"
    )


class StatusListRef(BaseModel):
    jurisdiction: str
    list: int
    uri: str
