"""Reserves (应急物资储备) without a database: who keeps them, what a stock movement does
to a lot (a batch of one item at one reserve point), when a batch is about to expire and
when a city's stock is below its quota. Pure Python."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from tongban.errors import FieldError, ValidationFailed

# --- who acts ------------------------------------------------------------------------------


class Duty(StrEnum):
    """An emergency duty an administrator grants a staff account, for a city (or the
    whole jurisdiction when no city is named)."""

    #: 储备管理员: keeps the reserve points' stock (movements, uploads, quotas).
    KEEPER = "keeper"
    #: 调度员: requests, commits, dispatches and receives mutual aid.
    COORDINATOR = "coordinator"


DUTY_LABELS = {Duty.KEEPER: "储备管理员", Duty.COORDINATOR: "调度员"}


class PointKind(StrEnum):
    GOVERNMENT = "government"
    HOSPITAL = "hospital"
    ENTERPRISE = "enterprise"


POINT_KIND_LABELS = {
    PointKind.GOVERNMENT: "政府储备库",
    PointKind.HOSPITAL: "医疗机构储备点",
    PointKind.ENTERPRISE: "协议企业代储点",
}


# --- stock movements -----------------------------------------------------------------------


class Movement(StrEnum):
    #: 入库: purchase, donation, production (adds).
    RECEIVE = "receive"
    #: 出库: local use (takes).
    ISSUE = "issue"
    #: 盘点: the lot holds what was counted (sets).
    COUNT = "count"
    #: 报废: expired or damaged (takes).
    DISPOSE = "dispose"
    #: 调出: packed into a mutual-aid shipment (takes).
    DISPATCH = "dispatch"
    #: 调入: received from a mutual-aid shipment (adds).
    AID_IN = "aid_in"


MOVEMENT_LABELS = {
    Movement.RECEIVE: "入库",
    Movement.ISSUE: "出库",
    Movement.COUNT: "盘点",
    Movement.DISPOSE: "报废",
    Movement.DISPATCH: "调拨发运",
    Movement.AID_IN: "调拨接收",
}

#: Movements a keeper makes by hand (forms, uploads); the other two belong to mutual aid.
MANUAL_MOVEMENTS = (Movement.RECEIVE, Movement.ISSUE, Movement.COUNT, Movement.DISPOSE)
#: The duty each movement needs.
MOVEMENT_DUTY = {
    Movement.RECEIVE: Duty.KEEPER,
    Movement.ISSUE: Duty.KEEPER,
    Movement.COUNT: Duty.KEEPER,
    Movement.DISPOSE: Duty.KEEPER,
    Movement.DISPATCH: Duty.COORDINATOR,
    Movement.AID_IN: Duty.COORDINATOR,
}
_TAKES = frozenset({Movement.ISSUE, Movement.DISPOSE, Movement.DISPATCH})
#: Movements that need a reason (why stock left outside mutual aid, or a count differs).
_REASONED = frozenset({Movement.ISSUE, Movement.DISPOSE})

#: The largest quantity of one lot or one movement (the exchange's Count allows more).
MAX_QUANTITY = 100_000_000
REASON_MAX = 500
BATCH_MAX = 40


class LotState(StrEnum):
    IN_STOCK = "in_stock"
    EMPTY = "empty"


LOT_STATE_LABELS = {LotState.IN_STOCK: "在库", LotState.EMPTY: "已出清"}


def lot_state(quantity: int) -> LotState:
    return LotState.IN_STOCK if quantity > 0 else LotState.EMPTY


@dataclass(frozen=True)
class Moved:
    """What a movement did to a lot's quantity."""

    before: int
    after: int

    @property
    def delta(self) -> int:
        return self.after - self.before


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[FieldError(field, message)])


def move(quantity: int, movement: Movement, amount: int, reason: str = "") -> Moved:
    """The lot's quantity after `movement` of `amount` (for a count: the quantity
    counted). Raises ValidationFailed naming `amount` or `reason`: nothing to move,
    more taken than the lot holds, a count that changes nothing, a missing reason."""
    if amount < 0 or amount > MAX_QUANTITY:
        raise _invalid("amount", f"数量须在 0 至 {MAX_QUANTITY} 之间")
    if len(reason) > REASON_MAX:
        raise _invalid("reason", f"原因不能超过 {REASON_MAX} 个字符")
    if movement is Movement.COUNT:
        after = amount
    elif amount == 0:
        raise _invalid("amount", "数量须大于 0")
    elif movement in _TAKES:
        if amount > quantity:
            raise _invalid(
                "amount", f"库存不足：该批次现有 {quantity}，不能{_verb(movement)} {amount}"
            )
        after = quantity - amount
    else:
        after = quantity + amount
        if after > MAX_QUANTITY:
            raise _invalid("amount", f"该批次库存不能超过 {MAX_QUANTITY}")
    if movement in _REASONED and not reason.strip():
        raise _invalid("reason", f"“{MOVEMENT_LABELS[movement]}”须说明原因")
    return Moved(quantity, after)


def _verb(movement: Movement) -> str:
    return MOVEMENT_LABELS[movement]


def check_batch(batch: str) -> str:
    """A batch number as stored (trimmed). Raises ValidationFailed naming `batch`."""
    batch = batch.strip()
    if len(batch) > BATCH_MAX:
        raise _invalid("batch", f"批号不能超过 {BATCH_MAX} 个字符")
    return batch


def check_new_lot(perishable: bool, expiry: date | None) -> None:
    """A new batch of a perishable item needs its expiry date (naming `expiry`)."""
    if perishable and expiry is None:
        raise _invalid("expiry", "该物资有有效期，新批次须填写有效期")


# --- alerts -----------------------------------------------------------------------------


class Freshness(StrEnum):
    OK = "ok"
    EXPIRING = "expiring"
    EXPIRED = "expired"


FRESHNESS_LABELS = {Freshness.OK: "有效", Freshness.EXPIRING: "临期", Freshness.EXPIRED: "已过期"}


def freshness(expiry: date | None, today: date, warn_days: int) -> Freshness:
    """Whether a batch is usable, close to its expiry (within `warn_days`), or expired
    (on its expiry day it is still usable)."""
    if expiry is None:
        return Freshness.OK
    if expiry < today:
        return Freshness.EXPIRED
    if warn_days > 0 and expiry <= today + timedelta(days=warn_days):
        return Freshness.EXPIRING
    return Freshness.OK


def low_stock(available: int, minimum: int) -> bool:
    """Whether a city's usable stock of an item is below its quota (no quota: never)."""
    return minimum > 0 and available < minimum


class AlertKind(StrEnum):
    LOW_STOCK = "low_stock"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    OVERDUE = "overdue"


ALERT_LABELS = {
    AlertKind.LOW_STOCK: "库存低于定额",
    AlertKind.EXPIRING: "临期",
    AlertKind.EXPIRED: "已过期",
    AlertKind.OVERDUE: "调拨超时",
}


__all__ = [
    "ALERT_LABELS",
    "AlertKind",
    "BATCH_MAX",
    "DUTY_LABELS",
    "Duty",
    "FRESHNESS_LABELS",
    "Freshness",
    "LOT_STATE_LABELS",
    "LotState",
    "MANUAL_MOVEMENTS",
    "MAX_QUANTITY",
    "MOVEMENT_DUTY",
    "MOVEMENT_LABELS",
    "Moved",
    "Movement",
    "POINT_KIND_LABELS",
    "PointKind",
    "REASON_MAX",
    "check_batch",
    "check_new_lot",
    "freshness",
    "lot_state",
    "low_stock",
    "move",
]
