"""What a message from another node must look like before anything is written: the base
of every payload schema and the constrained types they share. A peer node is a party,
not a friend: a hash is 64 lowercase hex characters before it is a path, a state is a
member of its enum before it is stored, a text has a bounded length.

Payloads are parsed from JSON in strict mode (no "1" for 1, no 1 for "1"), so a payload
that validates is exactly the payload the handler receives.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

#: A SHA-256 digest as this platform writes it: 64 lowercase hex characters.
SHA256_PATTERN = r"^[0-9a-f]{64}$"

Sha256 = Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]
#: A GB/T 2260 code (jurisdiction, city, district): six digits.
RegionCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
#: A case number: the receiving city's code, the day and a sequence (cases.domain).
CaseNumber = Annotated[str, StringConstraints(pattern=r"^[0-9]{20,32}$")]
#: A code of the reference data or the catalogue (authority, matter, material, kind …).
Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}$")]
#: A short label (a name, a role, a channel).
Name = Annotated[str, StringConstraints(max_length=200)]
ShortText = Annotated[str, StringConstraints(max_length=2000)]
LongText = Annotated[str, StringConstraints(max_length=20_000)]
Uuid = uuid.UUID
Instant = datetime
Day = date
Count = Annotated[int, Field(ge=0, le=1_000_000_000)]
Seq = Annotated[int, Field(ge=1, le=100_000)]
#: A content type of an accepted material (cases.attachments.SIGNATURES).
MaterialType = Annotated[
    str, StringConstraints(pattern=r"^(application/pdf|image/png|image/jpeg)$")
]
#: A file name as a person gave it (made safe again where it is served).
FileName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
#: A form filled in by an applicant: checked against the matter's schema where it counts.
FormData = Annotated[dict[str, Any], Field(max_length=500)]


class Payload(BaseModel):
    """The base of every message payload: unknown fields refused, no coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class OpenPayload(BaseModel):
    """For a payload whose producer may add fields in a later version (still strict)."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)
