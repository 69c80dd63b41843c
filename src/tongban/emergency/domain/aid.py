"""Mutual aid (互助调拨) without a database: the state machines of requests, commitments
and shipments, who writes each step, time targets per urgency and their escalation,
packing a shipment into boxes first-expiring-first-out, and a receipt's differences.
Pure Python.

Three records, each with its kernel history and copies on both nodes, each written by
exactly one side in any state (so the two copies never number an event twice):

  request    (requester's node)  submit → open → closed | cancelled; escalate
  commitment (giver's node)      commit | decline → committed → dispatched → fulfilled;
                                 withdraw; escalate
  shipment   (giver's node, then the requester's once it is on its way)
                                 dispatch → in_transit → received; escalate (requester)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from tongban.emergency.domain.reserves import MAX_QUANTITY, REASON_MAX
from tongban.errors import DomainError, FieldError, ValidationFailed
from tongban.kernel.lifecycle import Guard, StateMachine


class Side(StrEnum):
    """Who acts on a mutual-aid record: the requesting side's coordinator, the giving
    side's, or the system (the watch, a follow-up of another record's change)."""

    REQUESTER = "requester"
    GIVER = "giver"
    SYSTEM = "system"


class Urgency(StrEnum):
    IMMEDIATE = "immediate"
    URGENT = "urgent"
    ROUTINE = "routine"


URGENCY_LABELS = {Urgency.IMMEDIATE: "特急", Urgency.URGENT: "紧急", Urgency.ROUTINE: "一般"}


@dataclass(frozen=True)
class Targets:
    """Time targets of one urgency, in clock hours (emergencies keep no office hours):
    the givers answer within `respond` of the request, dispatch within `dispatch` of
    their commitment, and a shipment arrives within `arrive` of its dispatch."""

    respond: timedelta
    dispatch: timedelta
    arrive: timedelta


TIME_TARGETS = {
    Urgency.IMMEDIATE: Targets(timedelta(hours=2), timedelta(hours=6), timedelta(hours=24)),
    Urgency.URGENT: Targets(timedelta(hours=6), timedelta(hours=24), timedelta(hours=48)),
    Urgency.ROUTINE: Targets(timedelta(hours=24), timedelta(hours=72), timedelta(hours=168)),
}


def escalation_level(due: datetime, now: datetime, window: timedelta) -> int:
    """0 before `due`; 1 once it has passed (the duty holders are told); 2 once it has
    passed by another whole `window` (the jurisdiction's supervisors too)."""
    if now < due:
        return 0
    return 2 if now >= due + window else 1


class RequestState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class RequestAction(StrEnum):
    #: The request is made (its first event; not a transition).
    SUBMIT = "submit"
    ESCALATE = "escalate"
    CLOSE = "close"
    CANCEL = "cancel"


class CommitmentState(StrEnum):
    COMMITTED = "committed"
    DECLINED = "declined"
    DISPATCHED = "dispatched"
    FULFILLED = "fulfilled"
    WITHDRAWN = "withdrawn"


class CommitmentAction(StrEnum):
    #: The giver's answer (the first event; not a transition): commit or decline.
    COMMIT = "commit"
    DECLINE = "decline"
    #: Every committed unit is on its way, or the giver ends dispatching short.
    DISPATCHED = "dispatched"
    FINISH = "finish"
    #: Every shipment of it was received.
    FULFIL = "fulfil"
    WITHDRAW = "withdraw"
    ESCALATE = "escalate"


class ShipmentState(StrEnum):
    IN_TRANSIT = "in_transit"
    RECEIVED = "received"


class ShipmentAction(StrEnum):
    #: Loaded and on its way (the first event; not a transition).
    DISPATCH = "dispatch"
    RECEIVE = "receive"
    ESCALATE = "escalate"


REQUEST_STATE_LABELS = {
    RequestState.OPEN: "调拨中",
    RequestState.CLOSED: "已办结",
    RequestState.CANCELLED: "已撤销",
}
REQUEST_ACTION_LABELS = {
    RequestAction.SUBMIT: "发起请求",
    RequestAction.ESCALATE: "超时升级",
    RequestAction.CLOSE: "办结",
    RequestAction.CANCEL: "撤销",
}
COMMITMENT_STATE_LABELS = {
    CommitmentState.COMMITTED: "已承诺",
    CommitmentState.DECLINED: "无法支援",
    CommitmentState.DISPATCHED: "已发运",
    CommitmentState.FULFILLED: "已签收",
    CommitmentState.WITHDRAWN: "已撤回",
}
COMMITMENT_ACTION_LABELS = {
    CommitmentAction.COMMIT: "承诺支援",
    CommitmentAction.DECLINE: "答复无法支援",
    CommitmentAction.DISPATCHED: "全部发运",
    CommitmentAction.FINISH: "结束发运",
    CommitmentAction.FULFIL: "全部签收",
    CommitmentAction.WITHDRAW: "撤回承诺",
    CommitmentAction.ESCALATE: "超时升级",
}
SHIPMENT_STATE_LABELS = {ShipmentState.IN_TRANSIT: "运输中", ShipmentState.RECEIVED: "已签收"}
SHIPMENT_ACTION_LABELS = {
    ShipmentAction.DISPATCH: "发运",
    ShipmentAction.RECEIVE: "签收",
    ShipmentAction.ESCALATE: "超时升级",
}


@dataclass(frozen=True)
class AidFacts:
    """What a request brings to a mutual-aid step."""

    reason: str = ""
    #: Shipments already dispatched for the record (a request, a commitment).
    shipped: int = 0
    #: Shipments still on their way.
    in_transit: int = 0


def _reason(label: str) -> Guard:
    def guard(facts: AidFacts) -> DomainError | None:
        if facts.reason.strip():
            return None
        return ValidationFailed(f"“{label}”须说明理由", errors=[FieldError("reason", "请填写理由")])

    return guard


def _nothing_shipped(facts: AidFacts) -> str | None:
    return "已有物资发运，不能撤销或撤回" if facts.shipped else None


def _something_shipped(facts: AidFacts) -> str | None:
    return None if facts.shipped else "尚未发运任何物资：如不能支援，请撤回承诺"


def _nothing_in_transit(facts: AidFacts) -> str | None:
    return "仍有物资在途，请签收后再办结" if facts.in_transit else None


_R, _G, _S = Side.REQUESTER, Side.GIVER, Side.SYSTEM

REQUEST_MACHINE: StateMachine[RequestState, RequestAction] = StateMachine(
    RequestState,
    RequestAction,
    {
        (RequestState.OPEN, RequestAction.ESCALATE): (RequestState.OPEN, {_S}),
        (RequestState.OPEN, RequestAction.CLOSE): (RequestState.CLOSED, {_R, _S}),
        (RequestState.OPEN, RequestAction.CANCEL): (RequestState.CANCELLED, {_R}),
    },
    guards={
        RequestAction.CANCEL: [_reason("撤销"), _nothing_shipped],
        RequestAction.CLOSE: [_nothing_in_transit],
    },
    state_labels=REQUEST_STATE_LABELS,
    action_labels=REQUEST_ACTION_LABELS,
    noun="互助请求",
)

COMMITMENT_MACHINE: StateMachine[CommitmentState, CommitmentAction] = StateMachine(
    CommitmentState,
    CommitmentAction,
    {
        (CommitmentState.COMMITTED, CommitmentAction.DISPATCHED): (
            CommitmentState.DISPATCHED,
            {_G, _S},
        ),
        (CommitmentState.COMMITTED, CommitmentAction.FINISH): (CommitmentState.DISPATCHED, {_G}),
        (CommitmentState.DISPATCHED, CommitmentAction.FULFIL): (CommitmentState.FULFILLED, {_S}),
        (CommitmentState.COMMITTED, CommitmentAction.WITHDRAW): (
            CommitmentState.WITHDRAWN,
            {_G, _S},
        ),
        (CommitmentState.COMMITTED, CommitmentAction.ESCALATE): (CommitmentState.COMMITTED, {_S}),
    },
    guards={
        CommitmentAction.FINISH: [_reason("结束发运"), _something_shipped],
        CommitmentAction.WITHDRAW: [_reason("撤回承诺"), _nothing_shipped],
    },
    state_labels=COMMITMENT_STATE_LABELS,
    action_labels=COMMITMENT_ACTION_LABELS,
    noun="调拨承诺",
)

SHIPMENT_MACHINE: StateMachine[ShipmentState, ShipmentAction] = StateMachine(
    ShipmentState,
    ShipmentAction,
    {
        (ShipmentState.IN_TRANSIT, ShipmentAction.RECEIVE): (ShipmentState.RECEIVED, {_R}),
        (ShipmentState.IN_TRANSIT, ShipmentAction.ESCALATE): (ShipmentState.IN_TRANSIT, {_S}),
    },
    state_labels=SHIPMENT_STATE_LABELS,
    action_labels=SHIPMENT_ACTION_LABELS,
    noun="发运单",
)

#: Whose node writes each step of a shipment: the giver dispatches, and from then on
#: the shipment is the requester's to escalate and receive (never both at once).
SHIPMENT_WRITER = {
    ShipmentAction.DISPATCH: Side.GIVER,
    ShipmentAction.RECEIVE: Side.REQUESTER,
    ShipmentAction.ESCALATE: Side.REQUESTER,
}

#: A commitment whose giver has nothing more to do.
COMMITMENT_DONE = frozenset(
    {CommitmentState.DECLINED, CommitmentState.FULFILLED, CommitmentState.WITHDRAWN}
)

#: The most lines a request carries, boxes a shipment carries, units one box holds.
MAX_LINES = 50
MAX_BOXES = 2000


def check_lines(
    lines: list[tuple[str, int]], known: set[str], field: str = "lines"
) -> dict[str, int]:
    """Request or commitment lines as {item: quantity}: at least one, items known and
    not repeated, quantities 1..MAX_QUANTITY. Raises ValidationFailed naming
    `<field>.<n>.item_code|quantity`."""
    errors: list[FieldError] = []
    out: dict[str, int] = {}
    if not lines:
        errors.append(FieldError(field, "请至少填写一种物资"))
    if len(lines) > MAX_LINES:
        errors.append(FieldError(field, f"一次最多 {MAX_LINES} 种物资"))
    for n, (code, quantity) in enumerate(lines):
        if code not in known:
            errors.append(FieldError(f"{field}.{n}.item_code", "物资编码不在目录中"))
        elif code in out:
            errors.append(FieldError(f"{field}.{n}.item_code", "同一物资重复"))
        if not 1 <= quantity <= MAX_QUANTITY:
            errors.append(FieldError(f"{field}.{n}.quantity", f"数量须在 1 至 {MAX_QUANTITY} 之间"))
        out.setdefault(code, quantity)
    if errors:
        raise ValidationFailed("物资清单有误", errors=errors)
    return out


def check_commitment(requested: dict[str, int], offered: dict[str, int]) -> None:
    """A giver commits only items that were asked for, no more than asked."""
    errors = [
        FieldError(
            f"lines.{n}.quantity" if code in requested else f"lines.{n}.item_code",
            f"超过请求数量 {requested[code]}" if code in requested else "请求中没有该物资",
        )
        for n, (code, quantity) in enumerate(offered.items())
        if code not in requested or quantity > requested[code]
    ]
    if errors:
        raise ValidationFailed("承诺超出请求", errors=errors)


def remaining(committed: dict[str, int], shipped: dict[str, int]) -> dict[str, int]:
    """What is committed and not yet shipped, per item (items with none left omitted)."""
    return {i: q - shipped.get(i, 0) for i, q in committed.items() if q - shipped.get(i, 0) > 0}


@dataclass(frozen=True)
class LotStock:
    """A usable batch at the dispatching point, as packing sees it."""

    key: str
    item: str
    batch: str
    expiry: date | None
    quantity: int


@dataclass(frozen=True)
class Box:
    """One box of a shipment: one batch of one item."""

    item: str
    lot: str
    batch: str
    expiry: date | None
    quantity: int


def pack(lines: list[tuple[str, int, int]], lots: list[LotStock]) -> list[Box]:
    """Boxes for `lines` (item, quantity, units per box) from `lots`, first expiring
    first out; a box never mixes batches. Raises ValidationFailed naming
    `lines.<n>.quantity` when the point's usable stock is short, `lines.<n>.per_box`
    when a box size is not positive or the shipment would need too many boxes."""
    boxes: list[Box] = []
    errors: list[FieldError] = []
    for n, (item, quantity, per_box) in enumerate(lines):
        if per_box < 1:
            errors.append(FieldError(f"lines.{n}.per_box", "每箱数量须大于 0"))
            continue
        usable = sorted(
            (lot for lot in lots if lot.item == item and lot.quantity > 0),
            key=lambda lot: (lot.expiry or date.max, lot.batch),
        )
        have = sum(lot.quantity for lot in usable)
        if have < quantity:
            errors.append(
                FieldError(f"lines.{n}.quantity", f"该储备点可用库存 {have}，不足 {quantity}")
            )
            continue
        left = quantity
        for lot in usable:
            take = min(left, lot.quantity)
            left -= take
            while take > 0:
                size = min(take, per_box)
                boxes.append(Box(item, lot.key, lot.batch, lot.expiry, size))
                take -= size
            if left == 0:
                break
    if len(boxes) > MAX_BOXES:
        errors.append(FieldError("lines.0.per_box", f"一次发运最多 {MAX_BOXES} 箱，请增大每箱数量"))
    if errors:
        raise ValidationFailed("发运清单有误", errors=errors)
    return boxes


@dataclass(frozen=True)
class ReceiptLine:
    item: str
    shipped: int
    received: int

    @property
    def difference(self) -> int:
        return self.received - self.shipped


def receipt(
    boxes: list[tuple[str, str, int]], counts: dict[str, int], note: str = ""
) -> list[ReceiptLine]:
    """The receipt of a shipment's `boxes` (code, item, quantity) from the `counts` per
    box code (a box not counted arrived empty or not at all: 0). A count above what its
    box carried, an unknown box, or a difference without a note is refused (naming
    `counts.<code>` or `note`)."""
    shipped = {code: (item, quantity) for code, item, quantity in boxes}
    errors = [
        FieldError(f"counts.{code}", "发运单中没有该箱号") for code in counts if code not in shipped
    ]
    errors += [
        FieldError(f"counts.{code}", f"清点数量须在 0 至 {shipped[code][1]} 之间")
        for code, n in counts.items()
        if code in shipped and not 0 <= n <= shipped[code][1]
    ]
    if errors:
        raise ValidationFailed("清点数量有误", errors=errors)
    per_item: dict[str, list[int]] = {}
    for code, (item, quantity) in shipped.items():
        got = per_item.setdefault(item, [0, 0])
        got[0] += quantity
        got[1] += counts.get(code, 0)
    lines = [ReceiptLine(item, s, r) for item, (s, r) in per_item.items()]
    if any(line.difference for line in lines) and not note.strip():
        raise ValidationFailed(
            "签收数量与发运数量不一致，请说明情况", errors=[FieldError("note", "有差异须说明情况")]
        )
    if len(note) > REASON_MAX:
        raise ValidationFailed(
            "说明过长", errors=[FieldError("note", f"不能超过 {REASON_MAX} 个字符")]
        )
    return lines


def box_code(shipment_number: str, n: int) -> str:
    """The code printed on the `n`-th box (1-based) of a shipment."""
    return f"{shipment_number}-{n:03d}"


def request_number(city: str, day: str, seq: int) -> str:
    """互助请求 number: HZ, the requesting city, the day and a sequence."""
    return f"HZ{city}{day}{seq:04d}"


def shipment_number(city: str, day: str, seq: int) -> str:
    """发运单 number: FY, the dispatching city, the day and a sequence."""
    return f"FY{city}{day}{seq:04d}"


__all__ = [
    "AidFacts",
    "Box",
    "COMMITMENT_ACTION_LABELS",
    "COMMITMENT_DONE",
    "COMMITMENT_MACHINE",
    "COMMITMENT_STATE_LABELS",
    "CommitmentAction",
    "CommitmentState",
    "LotStock",
    "MAX_BOXES",
    "MAX_LINES",
    "REQUEST_ACTION_LABELS",
    "REQUEST_MACHINE",
    "REQUEST_STATE_LABELS",
    "ReceiptLine",
    "RequestAction",
    "RequestState",
    "SHIPMENT_ACTION_LABELS",
    "SHIPMENT_MACHINE",
    "SHIPMENT_STATE_LABELS",
    "SHIPMENT_WRITER",
    "ShipmentAction",
    "ShipmentState",
    "Side",
    "TIME_TARGETS",
    "Targets",
    "URGENCY_LABELS",
    "Urgency",
    "box_code",
    "check_commitment",
    "check_lines",
    "escalation_level",
    "pack",
    "receipt",
    "remaining",
    "request_number",
    "shipment_number",
]
