"""Request and response bodies of the card API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tongban.card.domain import REASON_MAX
from tongban.kernel.history import EventPublic


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
    events: list[EventPublic]


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


class CredentialIn(BaseModel):
    """A device's public key (JWK: EC P-256 or OKP Ed25519, no private member)."""

    model_config = ConfigDict(extra="forbid")

    jwk: dict[str, object] = Field(max_length=12)


class CredentialOut(BaseModel):
    """A credential for the device: it makes the codes itself until `expires_at`."""

    credential: str = Field(description="the credential, base64url (docs/card-format.md)")
    issued_at: datetime
    expires_at: datetime
    device_kid: str
    card_number: str
    holder_name: str
    city_code: str
    city_name: str
    age_band: str
    concessions: list[str]
    transport: bool
    qr_prefix: str
    refresh_seconds: int


class RevocationsRef(BaseModel):
    """A jurisdiction's revocation list this node serves to gates (its own, signed now,
    or received from the jurisdiction's node)."""

    jurisdiction: str
    own: bool
    seq: int
    count: int | None = None
    iat: datetime | None = None
    exp: datetime | None = None


class GateRegister(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gate_id: str = Field(min_length=1, max_length=64)
    venue_code: str = Field(min_length=1, max_length=60)
    public_jwk: dict[str, str] = Field(max_length=6)


class GatePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    gate_id: str
    venue_code: str
    public_jwk: dict[str, str]
    registered_at: datetime
    revoked_at: datetime | None


class UploadOut(BaseModel):
    stored: int
    duplicates: int


class SeenCode(BaseModel):
    ref: str
    time: int


class VenuePublic(BaseModel):
    code: str
    name: str
    city: str
    kind: str
    kind_label: str
    operator: str


class UsePublic(BaseModel):
    """A use of the holder's card at a gate or venue."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    venue_code: str
    venue_name: str
    venue_city: str
    used_at: datetime
    admitted: bool
    reason: str | None
    rule: str | None
    benefit: str | None
    why: str | None
    flagged: bool


class ScanIn(BaseModel):
    """A code scanned by a venue staff member's camera, or typed in."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(max_length=2000)
    #: One of the caller's venues (default: their first).
    venue_code: str | None = Field(default=None, max_length=60)


class ScanHolder(BaseModel):
    jurisdiction: str
    city: str
    city_name: str
    description: str


class ScanOut(BaseModel):
    """A scan's verdict, as the scan page shows it (every text in Chinese)."""

    admitted: bool
    #: 通过：免费参观 / 未通过：卡已挂失、补换或注销 …
    message: str
    reason: str | None
    reason_label: str | None
    benefit: str | None
    why: str | None
    rule: str | None
    flagged: bool
    holder: ScanHolder | None
    venue: VenuePublic
    use_id: uuid.UUID
    elapsed_ms: float


class FigureRowOut(BaseModel):
    period: str
    operator: str
    holder_city: str
    venue_city: str
    uses: int
    admitted: int
    refused: int
    concessions: int
    cross_jurisdiction: bool


class FiguresOut(BaseModel):
    start: date
    end: date
    period: str
    operator: str | None
    totals: dict[str, int]
    rows: list[FigureRowOut]
