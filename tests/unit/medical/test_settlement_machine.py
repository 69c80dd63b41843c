"""A settlement's lifecycle on the kernel state machine: settled → reversed, and
reversed is final."""

from __future__ import annotations

import pytest

from tongban.errors import Conflict
from tongban.kernel.lifecycle import IllegalTransition
from tongban.medical.domain import SETTLEMENT, SettlementAction, SettlementState


def test_a_settled_claim_can_be_reversed_once():
    assert (
        SETTLEMENT.next_state(SettlementState.SETTLED, SettlementAction.REVERSE)
        is SettlementState.REVERSED
    )
    assert SETTLEMENT.allowed_actions(SettlementState.SETTLED) == [SettlementAction.REVERSE]
    assert SETTLEMENT.allowed_actions(SettlementState.REVERSED) == []


def test_reversing_a_reversed_settlement_is_a_409_in_chinese():
    with pytest.raises(IllegalTransition) as e:
        SETTLEMENT.next_state(SettlementState.REVERSED, SettlementAction.REVERSE)
    assert isinstance(e.value, Conflict) and e.value.status == 409
    assert e.value.detail == "结算当前状态为“已冲正”，不能执行“冲正”"
