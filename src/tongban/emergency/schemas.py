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


# --- mutual aid ----------------------------------------------------------------------------

Units = Field(ge=1, le=MAX_QUANTITY)


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_code: str = Field(min_length=1, max_length=40)
    quantity: int = Units


class RequestIn(BaseModel):
    """A city's request (EDXL-RM RequestResource)."""

    model_config = ConfigDict(extra="forbid")

    city_code: str = Field(min_length=6, max_length=6, description="请求城市")
    destination_code: str = Field(min_length=1, max_length=40, description="本市接收储备点编码")
    urgency: Literal["immediate", "urgent", "routine"] = Field(description="特急、紧急、一般")
    title: str = Field(min_length=1, max_length=200, description="事由")
    contact: str = Field(default="", max_length=120, description="联系人及电话")
    lines: list[LineIn] = Field(min_length=1, max_length=50)
    targets: list[str] = Field(min_length=1, max_length=10, description="被请求辖区代码")


class CommitIn(BaseModel):
    """An asked jurisdiction's commitment (EDXL-RM CommitResource)."""

    model_config = ConfigDict(extra="forbid")

    lines: list[LineIn] = Field(min_length=1, max_length=50)
    note: str = Field(default="", max_length=REASON_MAX)


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=REASON_MAX)


class DispatchLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_code: str = Field(min_length=1, max_length=40)
    quantity: int = Units
    per_box: int = Field(ge=1, le=MAX_QUANTITY, description="每箱数量")


class DispatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    point_code: str = Field(min_length=1, max_length=40, description="发运储备点")
    vehicle: str = Field(min_length=1, max_length=40, description="车牌号")
    driver: str = Field(default="", max_length=80)
    contact: str = Field(default="", max_length=120)
    lines: list[DispatchLineIn] = Field(min_length=1, max_length=50)


class ReceiptIn(BaseModel):
    """Units counted in each box, by box code (a box not listed: none arrived)."""

    model_config = ConfigDict(extra="forbid")

    counts: dict[str, int] = Field(max_length=2000)
    note: str = Field(default="", max_length=REASON_MAX)


class LinePublic(BaseModel):
    item_code: str
    quantity: int


class BoxPublic(BaseModel):
    code: str
    item_code: str
    batch: str
    expiry: date | None
    quantity: int
    counted: int | None


class ReceiptLinePublic(BaseModel):
    item_code: str
    shipped: int
    received: int
    difference: int


class ShipmentPublic(BaseModel):
    id: uuid.UUID
    number: str
    request_id: uuid.UUID
    commitment_id: uuid.UUID
    giver_jurisdiction: str
    requester_jurisdiction: str
    from_point_code: str
    from_point_name: str
    destination_code: str
    vehicle: str
    driver: str
    contact: str
    boxes: list[BoxPublic]
    state: Literal["in_transit", "received"]
    dispatched_at: datetime
    arrive_due_at: datetime
    received_at: datetime | None
    receipt: list[ReceiptLinePublic] | None
    receipt_note: str
    escalation_level: int
    version: int
    events: list[EventPublic]


class CommitmentPublic(BaseModel):
    id: uuid.UUID
    number: str
    giver_jurisdiction: str
    giver_city: str | None
    state: Literal["committed", "declined", "dispatched", "fulfilled", "withdrawn"]
    lines: list[LinePublic]
    shipped: list[LinePublic]
    note: str
    dispatch_due_at: datetime | None
    escalation_level: int
    events: list[EventPublic]
    shipments: list[ShipmentPublic]


class RequestSummary(BaseModel):
    id: uuid.UUID
    number: str
    requester_jurisdiction: str
    requester_city: str
    urgency: str
    title: str
    state: Literal["open", "closed", "cancelled"]
    targets: list[str]
    created_at: datetime
    respond_due_at: datetime
    arrive_due_at: datetime
    escalation_level: int
    #: Made on another node (this node holds a copy).
    replica: bool


class RequestPublic(RequestSummary):
    destination_code: str
    destination_name: str
    destination_address: str
    contact: str
    lines: list[LinePublic]
    received: list[LinePublic]
    commitments: list[CommitmentPublic]
    events: list[EventPublic]
