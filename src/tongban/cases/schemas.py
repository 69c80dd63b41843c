from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tongban.kernel.history import EventPublic as EventPublic


class ApplicationCreate(BaseModel):
    """An online application (全程网办 or 多地联办)."""

    matter_code: str = Field(min_length=1, max_length=40)
    competent_jurisdiction: str = Field(min_length=6, max_length=6, description="GB/T 2260 code")
    competent_city: str | None = Field(default=None, min_length=6, max_length=6)
    mode: str = "online"
    form_data: dict[str, Any] = Field(default_factory=dict)
    delivery_method: str = "electronic"
    delivery_address: str | None = Field(default=None, max_length=200)
    consent: bool = False
    attachment_ids: list[uuid.UUID] = Field(default_factory=list)
    joint_jurisdictions: list[str] = Field(default_factory=list)
    phone: str | None = Field(default=None, max_length=20)
    #: Evidence kinds the applicant consents to have fetched for this case (一次授权).
    evidence_consent: list[str] = Field(default_factory=list, max_length=10)
    #: 免提交: material code -> id of the applicant's e-licence that stands in for it.
    licences: dict[str, uuid.UUID] = Field(default_factory=dict, max_length=20)


class WindowApplicationCreate(ApplicationCreate):
    """An application received at a window for another jurisdiction (异地代收代办)."""

    mode: str = "proxy"
    applicant_name: str = Field(min_length=1, max_length=80)
    applicant_identifier: str = Field(min_length=15, max_length=18)
    applicant_type: str = "resident"
    identity_verified: bool = False
    materials_checked: bool = False


class CorrectionItemCreate(BaseModel):
    """One item of a correction notice: a material code (the matter's, or a new one for
    an item the matter does not list), its name and why it must be corrected."""

    code: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=1, max_length=120)
    reason: str = Field(default="", max_length=500)


class CaseAction(BaseModel):
    action: str
    comment: str = Field(default="", max_length=2000)
    result_text: str | None = Field(default=None, max_length=4000)
    #: request_correction: every item at once (一次性告知) and the deadline in working days.
    items: list[CorrectionItemCreate] | None = Field(default=None, max_length=20)
    deadline_days: int | None = None


class Resubmission(BaseModel):
    form_data: dict[str, Any] | None = None
    attachment_ids: list[uuid.UUID] = Field(default_factory=list)
    comment: str = Field(default="", max_length=2000)


class RatingCreate(BaseModel):
    score: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=2000)


class AttachmentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    material_code: str
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_at: datetime


class CaseSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    number: str
    matter_code: str
    matter_name: str
    applicant_name: str
    state: str
    mode: str
    channel: str
    receiving_city: str
    competent_jurisdiction: str
    authority_name: str
    submitted_at: datetime
    deadline: date | None
    deadline_flag: str


class CasePublic(CaseSummary):
    applicant_type: str
    applicant_identifier_masked: str
    receiving_jurisdiction: str
    competent_city: str | None
    authority_id: uuid.UUID
    handoff: str
    form_data: dict[str, Any]
    delivery_method: str
    result_text: str | None
    time_limit_days: int
    accepted_at: datetime | None
    closed_at: datetime | None
    parent_number: str | None
    subtask_numbers: list[str]
    events: list[EventPublic]
    attachments: list[AttachmentPublic]
    available_actions: list[str]


class RatingPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    score: int
    comment: str
    created_at: datetime
    rectification_opened: bool = False
