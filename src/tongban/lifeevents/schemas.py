"""What the JSON API of life-event bundles takes and answers (pydantic; separate from
the ORM classes)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from tongban.kernel.history import EventPublic as EventPublic


class BundleCreate(BaseModel):
    """One submission of a bundle: the merged form, the files uploaded before
    (`POST /api/v1/attachments`, each naming its material), the consent to share."""

    bundle: str = Field(min_length=1, max_length=40, description="the bundle's code")
    form_data: dict[str, Any] = Field(default_factory=dict)
    attachment_ids: list[uuid.UUID] = Field(default_factory=list, max_length=30)
    phone: str | None = Field(default=None, max_length=20)
    consent: bool = False


class PlacePublic(BaseModel):
    key: str
    title: str
    #: The merged-form field holding the city, or (`choose`) the field whose value names it.
    city_field: str | None
    choose: str | None
    cities: dict[str, str]


class StepDefPublic(BaseModel):
    key: str
    title: str
    matter_code: str
    place: str
    after: list[str]
    mode: str
    joint: str | None
    when: str | None
    #: Matter material code -> the earlier step whose e-licence stands in for it.
    materials_from: dict[str, str]


class BundleDefPublic(BaseModel):
    code: str
    name: str
    description: str
    subjects: list[str]
    #: The merged form: a flat JSON Schema (x-city marks a city field, a GB/T 2260 code).
    form: dict[str, Any]
    places: list[PlacePublic]
    steps: list[StepDefPublic]


class StepCase(BaseModel):
    id: uuid.UUID
    number: str
    state: str
    state_label: str
    authority_name: str
    result_text: str | None


class StepPublic(BaseModel):
    key: str
    title: str
    matter_code: str
    state: str
    state_label: str
    #: Titles of the earlier steps it still waits for.
    waits_on: list[str]
    #: Titles of the later steps a failure of this one blocks.
    blocks: list[str]
    note: str
    jurisdiction_code: str | None
    authority_name: str | None
    case: StepCase | None
    #: The e-licence its case produced, when this node holds it.
    licence_id: uuid.UUID | None
    licence_identifier: str | None
    started_at: datetime | None
    closed_at: datetime | None


class BundleSummary(BaseModel):
    id: uuid.UUID
    number: str
    bundle_code: str
    name: str
    state: str
    state_label: str
    submitted_at: datetime
    closed_at: datetime | None


class BundlePublic(BundleSummary):
    steps: list[StepPublic]
    events: list[EventPublic]
