from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict


class JurisdictionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    code: str
    name: str
    short_name: str
    node_id: str


class CityPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    code: str
    name: str
    jurisdiction_code: str


class DistrictPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    code: str
    name: str
    city_code: str
    demonstration_zone: bool


class AuthorityPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    code: str
    name: str
    type: str
    level: str
    jurisdiction_code: str
    city_code: str | None
