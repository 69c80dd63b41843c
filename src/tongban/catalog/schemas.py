from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class MaterialPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    required: bool
    licence_type: str | None = Field(
        default=None, description="E-licence type that can stand in for it (免提交)"
    )
    description: str = ""


class MatterSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    subjects: list[str] = Field(description="个人 and/or 法人")
    category: str
    authority_type: str
    authority_level: str = Field(description="city | province")
    modes: list[str] = Field(
        description="online (全程网办), proxy (异地代收代办), joint (多地联办)"
    )
    time_limit_days: int = Field(description="Standard time limit in working days")


class MatterPublic(MatterSummary):
    description: str
    legal_basis: str
    result_licence_type: str | None
    joint_authority_types: list[str]
    active: bool
    materials: list[MaterialPublic]
    form_schema: dict[str, Any] = Field(description="JSON Schema (draft 2020-12) of the form")
