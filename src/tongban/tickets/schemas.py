"""Shapes of work orders in the JSON API (separate from the ORM classes)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from tongban.kernel.history import EventPublic as EventPublic
from tongban.types import Latitude, Longitude


class CategoryPublic(BaseModel):
    code: str
    group: str
    name: str
    authority_type: str
    urgencies: list[str]
    description: str


class ReportCreate(BaseModel):
    category_code: str = Field(min_length=1, max_length=40)
    urgency: str = Field(min_length=1, max_length=20)
    description: str = Field(min_length=1, max_length=2000)
    lat: Latitude | None = None
    lon: Longitude | None = None
    address: str = Field(default="", max_length=200)
    city_code: str | None = Field(default=None, max_length=6)
    reporter_name: str | None = Field(default=None, max_length=80)
    reporter_phone: str | None = Field(default=None, max_length=20)
    photo_ids: list[uuid.UUID] = Field(default_factory=list, max_length=9)
    merge_into: uuid.UUID | None = None
    allow_duplicate: bool = False


class RouteQuery(BaseModel):
    category_code: str = Field(min_length=1, max_length=40)
    lat: Latitude | None = None
    lon: Longitude | None = None
    city_code: str | None = Field(default=None, max_length=6)


class RoutePublic(BaseModel):
    city_code: str
    jurisdiction_code: str
    district_code: str | None
    lead_authority: str
    co_handlers: list[str]
    joint: bool
    note: str


class TicketAction(BaseModel):
    action: str = Field(min_length=1, max_length=30)
    comment: str = Field(default="", max_length=2000)
    authority_code: str | None = Field(default=None, max_length=60)
    photo_ids: list[uuid.UUID] = Field(default_factory=list, max_length=9)


class PartyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    authority_id: uuid.UUID
    authority_name: str
    jurisdiction_code: str
    city_code: str
    distance_m: float


class TicketSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    number: str
    channel: str
    category_code: str
    urgency: str
    state: str
    city_code: str
    authority_name: str
    joint: bool
    due_at: datetime | None
    deadline_flag: str
    created_at: datetime


class TicketPublic(TicketSummary):
    description: str
    address: str
    lat: float | None
    lon: float | None
    jurisdiction_code: str
    district_code: str | None
    routing_note: str
    resolution: str | None
    merged_into: str | None = None
    satisfied: bool | None
    reopen_count: int
    closed_at: datetime | None
    parties: list[PartyPublic]
    events: list[EventPublic]
    photo_ids: list[uuid.UUID] = Field(default_factory=list)
    available_actions: list[str] = Field(default_factory=list)


class PhotoPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    filename: str
    content_type: str
    size: int
