"""The reservation of accumulators on the insured node, on the kernel state machine:
reserved → confirmed / released / expired / reversed, confirmed → reversed; which moves
give the amounts back; what an overdue reservation becomes; what the hospital's node
still owes the insured node."""

from __future__ import annotations

import pytest

from tongban.kernel.lifecycle import IllegalTransition
from tongban.medical.domain import (
    COUNTING,
    RESERVATION,
    ReservationAction,
    ReservationState,
    SettlementState,
    gives_back,
    overdue_outcome,
    pending_step,
)

R, A = ReservationState, ReservationAction


@pytest.mark.parametrize(
    ("state", "action", "target"),
    [
        (R.RESERVED, A.CONFIRM, R.CONFIRMED),
        (R.RESERVED, A.RELEASE, R.RELEASED),
        (R.RESERVED, A.EXPIRE, R.EXPIRED),
        (R.RESERVED, A.REVERSE, R.REVERSED),
        (R.CONFIRMED, A.REVERSE, R.REVERSED),
    ],
)
def test_the_moves_a_reservation_can_make(state, action, target):
    assert RESERVATION.next_state(state, action) is target


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (R.CONFIRMED, A.RELEASE),  # a settled claim is reversed, never silently released
        (R.CONFIRMED, A.EXPIRE),
        (R.RELEASED, A.CONFIRM),  # given back: the hospital must settle anew
        (R.EXPIRED, A.CONFIRM),
        (R.REVERSED, A.CONFIRM),
        (R.REVERSED, A.REVERSE),
    ],
)
def test_final_states_refuse_with_a_409_in_chinese(state, action):
    with pytest.raises(IllegalTransition) as e:
        RESERVATION.next_state(state, action)
    assert e.value.status == 409
    assert e.value.detail.startswith("累计额预留当前状态为“")


def test_only_reserved_and_confirmed_count_and_leaving_them_gives_back():
    assert {R.RESERVED, R.CONFIRMED} == COUNTING
    assert gives_back(R.RESERVED, R.RELEASED) and gives_back(R.RESERVED, R.EXPIRED)
    assert gives_back(R.RESERVED, R.REVERSED) and gives_back(R.CONFIRMED, R.REVERSED)
    assert not gives_back(R.RESERVED, R.CONFIRMED)


def test_an_overdue_reservation_follows_what_the_hospital_holds():
    assert overdue_outcome(SettlementState.SETTLED) is A.CONFIRM
    assert overdue_outcome(SettlementState.REVERSED) is A.REVERSE
    assert overdue_outcome(None) is A.EXPIRE


def test_what_the_hospitals_node_still_owes():
    S = SettlementState
    assert pending_step(S.SETTLED, R.RESERVED) is A.CONFIRM
    assert pending_step(S.SETTLED, R.CONFIRMED) is None
    assert pending_step(S.REVERSED, R.RESERVED) is A.REVERSE
    assert pending_step(S.REVERSED, R.CONFIRMED) is A.REVERSE
    assert pending_step(S.REVERSED, R.REVERSED) is None
    # Given back already (expired before the reversal came): nothing left to send.
    assert pending_step(S.REVERSED, R.EXPIRED) is None
