"""Request and response bodies of the emergency API (pydantic; separate from the ORM)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tongban.emergency.domain import BATCH_MAX, MAX_QUANTITY, REASON_MAX
from tongban.kernel.history import EventPublic

Quantity = Field(ge=0, le=MAX_QUANTITY)


class ItemPublic(BaseModel):
    code: str
    name: str
    unit: str
    category: str
    category_label: str
    perishable: bool
    min_city: int = Field(description="默认储备定额（每个城市）")
    warn_days: int = Field(description="临期预警天数")


class PointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=40, description="储备点编码（自动加城市代码前缀）")
    name: str = Field(min_length=1, max_length=120)
    city_code: str = Field(min_length=6, max_length=6)
    kind: Literal["government", "hospital", "enterprise"] = "government"
    address: str = Field(default="", max_length=200)


class PointPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    kind: str
    jurisdiction_code: str
    city_code: str
    address: str


class MovementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    point_code: str = Field(min_length=1, max_length=40)
    item_code: str = Field(min_length=1, max_length=40)
    batch: str = Field(default="", max_length=BATCH_MAX)
    expiry: date | None = None
    movement: Literal["receive", "issue", "count", "dispose"]
    amount: int = Quantity
    reason: str = Field(default="", max_length=REASON_MAX)


class LotPublic(BaseModel):
    id: uuid.UUID
    point_code: str
    point_name: str
    city_code: str
    item_code: str
    batch: str
    expiry: date | None
    freshness: Literal["ok", "expiring", "expired"]
    quantity: int
    state: str
    version: int
    events: list[EventPublic] | None = None


class MovementOut(BaseModel):
    lot: LotPublic
    seq: int
    before: int
    after: int


class UploadOut(BaseModel):
    rows: int
    lots_created: int
    delta: int = Field(description="净增数量（入库为正，盘点可能为负）")


class StockRowPublic(BaseModel):
    jurisdiction_code: str
    city_code: str
    item_code: str
    quantity: int
    available: int = Field(description="未过期的数量")
    expiring: int = Field(description="临期数量")
    points: int
    minimum: int = Field(description="储备定额")
    low: bool
    shared: bool = Field(description="来自其他辖区共享的汇总数据")
    as_of: datetime | None


class QuotaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    minimum: int = Quantity


class QuotaPublic(BaseModel):
    city_code: str
    item_code: str
    minimum: int


class AlertPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    jurisdiction_code: str
    city_code: str | None
    text: str
    level: int
    link: str
    created_at: datetime


class DutyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    duty: Literal["keeper", "coordinator"]
    city_code: str | None = Field(default=None, min_length=6, max_length=6)
    jurisdiction_code: str | None = Field(default=None, min_length=6, max_length=6)


class DutyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    account_id: uuid.UUID
    duty: str
    jurisdiction_code: str
    city_code: str | None
