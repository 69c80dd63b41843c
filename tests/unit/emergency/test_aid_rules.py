"""Mutual aid without a database: the three state machines (who may take each step, the
guards), time targets and escalation, request and commitment lines, packing a shipment
first-expiring-first-out into boxes of one batch, and a receipt's differences."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from tongban.emergency import domain
from tongban.emergency.domain import (
    AidFacts,
    CommitmentAction,
    CommitmentState,
    LotStock,
    RequestAction,
    RequestState,
    ShipmentAction,
    ShipmentState,
    Side,
    Urgency,
)
from tongban.errors import ValidationFailed
from tongban.kernel.lifecycle import IllegalTransition

R, C, S = domain.REQUEST_MACHINE, domain.COMMITMENT_MACHINE, domain.SHIPMENT_MACHINE


def test_only_the_requester_receives_a_shipment_and_only_once() -> None:
    assert S.next_state(ShipmentState.IN_TRANSIT, ShipmentAction.RECEIVE, Side.REQUESTER) is (
        ShipmentState.RECEIVED
    )
    with pytest.raises(IllegalTransition) as refused:
        S.next_state(ShipmentState.IN_TRANSIT, ShipmentAction.RECEIVE, Side.GIVER)
    assert refused.value.why == "actor"
    with pytest.raises(IllegalTransition) as refused:
        S.next_state(ShipmentState.RECEIVED, ShipmentAction.RECEIVE, Side.REQUESTER)
    assert refused.value.why == "state"
    # Once on its way, the giver writes nothing more to a shipment.
    assert S.allowed_actions(ShipmentState.IN_TRANSIT, Side.GIVER) == []
    assert domain.SHIPMENT_WRITER[ShipmentAction.DISPATCH] is Side.GIVER
    assert domain.SHIPMENT_WRITER[ShipmentAction.RECEIVE] is Side.REQUESTER


def test_a_request_is_cancelled_with_a_reason_and_only_before_anything_shipped() -> None:
    with pytest.raises(ValidationFailed) as refused:
        R.next_state(RequestState.OPEN, RequestAction.CANCEL, Side.REQUESTER, AidFacts())
    assert refused.value.errors[0].field == "reason"
    with pytest.raises(IllegalTransition, match="已有物资发运"):
        R.next_state(
            RequestState.OPEN, RequestAction.CANCEL, Side.REQUESTER, AidFacts("不需要了", 1)
        )
    assert (
        R.next_state(RequestState.OPEN, RequestAction.CANCEL, Side.REQUESTER, AidFacts("不需要了"))
        is RequestState.CANCELLED
    )
    with pytest.raises(IllegalTransition):  # a giver cannot cancel the requester's request
        R.next_state(RequestState.OPEN, RequestAction.CANCEL, Side.GIVER, AidFacts("x"))


def test_a_request_closes_only_when_nothing_is_on_its_way() -> None:
    with pytest.raises(IllegalTransition, match="在途"):
        R.next_state(RequestState.OPEN, RequestAction.CLOSE, Side.REQUESTER, AidFacts(in_transit=1))
    assert R.next_state(RequestState.OPEN, RequestAction.CLOSE, Side.SYSTEM, AidFacts()) is (
        RequestState.CLOSED
    )
    with pytest.raises(IllegalTransition):
        R.next_state(RequestState.CLOSED, RequestAction.ESCALATE, Side.SYSTEM, AidFacts())


def test_a_commitment_is_dispatched_fulfilled_or_withdrawn_by_the_right_side() -> None:
    assert (
        C.next_state(CommitmentState.COMMITTED, CommitmentAction.DISPATCHED, Side.GIVER, AidFacts())
        is CommitmentState.DISPATCHED
    )
    with pytest.raises(IllegalTransition):  # only the system, on the last receipt
        C.next_state(CommitmentState.DISPATCHED, CommitmentAction.FULFIL, Side.GIVER, AidFacts())
    with pytest.raises(IllegalTransition, match="已有物资发运"):
        C.next_state(
            CommitmentState.COMMITTED, CommitmentAction.WITHDRAW, Side.GIVER, AidFacts("x", 1)
        )
    with pytest.raises(IllegalTransition, match="尚未发运"):
        C.next_state(CommitmentState.COMMITTED, CommitmentAction.FINISH, Side.GIVER, AidFacts("x"))
    assert (
        C.next_state(
            CommitmentState.COMMITTED, CommitmentAction.FINISH, Side.GIVER, AidFacts("只有这些", 1)
        )
        is CommitmentState.DISPATCHED
    )
    with pytest.raises(IllegalTransition):  # the requester never writes a commitment
        C.next_state(
            CommitmentState.COMMITTED, CommitmentAction.WITHDRAW, Side.REQUESTER, AidFacts("x")
        )


def test_escalation_by_time_target() -> None:
    due = datetime(2026, 12, 1, 8, tzinfo=UTC)
    window = domain.TIME_TARGETS[Urgency.IMMEDIATE].respond
    assert window == timedelta(hours=2)
    assert domain.escalation_level(due, due - timedelta(seconds=1), window) == 0
    assert domain.escalation_level(due, due, window) == 1
    assert domain.escalation_level(due, due + window, window) == 2
    targets = domain.TIME_TARGETS
    assert (
        targets[Urgency.IMMEDIATE].arrive
        < targets[Urgency.URGENT].arrive
        < targets[Urgency.ROUTINE].arrive
    )


KNOWN = {"TST-AG", "PPE-SUIT", "LIV-TENT"}


def test_lines_are_checked_naming_each_bad_input() -> None:
    assert domain.check_lines([("TST-AG", 10), ("LIV-TENT", 2)], KNOWN) == {
        "TST-AG": 10,
        "LIV-TENT": 2,
    }
    with pytest.raises(ValidationFailed) as refused:
        domain.check_lines([("TST-AG", 10), ("NOPE", 1), ("TST-AG", 1), ("PPE-SUIT", 0)], KNOWN)
    assert [e.field for e in refused.value.errors] == [
        "lines.1.item_code",
        "lines.2.item_code",
        "lines.3.quantity",
    ]
    with pytest.raises(ValidationFailed):
        domain.check_lines([], KNOWN)
    with pytest.raises(ValidationFailed) as refused:
        domain.check_commitment({"TST-AG": 10}, {"TST-AG": 11, "LIV-TENT": 1})
    assert [e.field for e in refused.value.errors] == ["lines.0.quantity", "lines.1.item_code"]
    assert domain.remaining({"TST-AG": 10, "LIV-TENT": 2}, {"TST-AG": 4, "LIV-TENT": 2}) == {
        "TST-AG": 6
    }


def _lot(key: str, quantity: int, expiry: date | None, item: str = "TST-AG") -> LotStock:
    return LotStock(key, item, f"B-{key}", expiry, quantity)


def test_packing_takes_the_first_expiring_batches_first_and_never_mixes_them() -> None:
    lots = [
        _lot("late", 1000, date(2028, 1, 1)),
        _lot("early", 250, date(2027, 1, 1)),
        _lot("tent", 5, None, "LIV-TENT"),
    ]
    boxes = domain.pack([("TST-AG", 600, 200), ("LIV-TENT", 5, 2)], lots)
    ag = [(b.lot, b.quantity) for b in boxes if b.item == "TST-AG"]
    assert ag == [("early", 200), ("early", 50), ("late", 200), ("late", 150)]
    assert sum(q for _, q in ag) == 600
    assert [(b.lot, b.quantity) for b in boxes if b.item == "LIV-TENT"] == [
        ("tent", 2),
        ("tent", 2),
        ("tent", 1),
    ]


def test_packing_refuses_a_shortage_and_a_box_of_nothing() -> None:
    with pytest.raises(ValidationFailed) as refused:
        domain.pack([("TST-AG", 2000, 100), ("LIV-TENT", 1, 0)], [_lot("a", 1250, None)])
    assert [e.field for e in refused.value.errors] == ["lines.0.quantity", "lines.1.per_box"]
    assert "可用库存 1250" in refused.value.errors[0].message
    with pytest.raises(ValidationFailed):  # too many boxes
        domain.pack([("TST-AG", domain.MAX_BOXES + 1, 1)], [_lot("a", 10**6, None)])


BOXES = [("FY1-001", "TST-AG", 200), ("FY1-002", "TST-AG", 200), ("FY1-003", "LIV-TENT", 5)]


def test_a_receipt_counts_each_box_and_explains_every_difference() -> None:
    full = domain.receipt(BOXES, {"FY1-001": 200, "FY1-002": 200, "FY1-003": 5})
    assert [(x.item, x.shipped, x.received, x.difference) for x in full] == [
        ("TST-AG", 400, 400, 0),
        ("LIV-TENT", 5, 5, 0),
    ]
    with pytest.raises(ValidationFailed) as refused:
        domain.receipt(BOXES, {"FY1-001": 200, "FY1-002": 190, "FY1-003": 5})
    assert refused.value.errors[0].field == "note"
    short = domain.receipt(BOXES, {"FY1-001": 200, "FY1-003": 5}, "第2箱未到")
    assert [(x.item, x.difference) for x in short] == [("TST-AG", -200), ("LIV-TENT", 0)]


def test_a_receipt_refuses_unknown_boxes_and_counts_above_the_box() -> None:
    with pytest.raises(ValidationFailed) as refused:
        domain.receipt(BOXES, {"FY1-009": 1, "FY1-001": 201, "FY1-002": -1}, "x")
    assert sorted(e.field for e in refused.value.errors) == [
        "counts.FY1-001",
        "counts.FY1-002",
        "counts.FY1-009",
    ]


def test_numbers() -> None:
    assert domain.request_number("340100", "20261201", 7) == "HZ340100202612010007"
    assert domain.shipment_number("310000", "20261201", 12) == "FY310000202612010012"
    assert domain.box_code("FY310000202612010012", 3) == "FY310000202612010012-003"
