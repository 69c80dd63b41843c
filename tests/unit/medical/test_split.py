"""The claim split: the worked examples of docs/medical.md, the two half-up roundings,
and properties over random claims and policies."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tongban.medical.domain import (
    Accumulators,
    ItemClass,
    Line,
    Policy,
    Scheme,
    eligible_amount,
    reverse,
    round_half_up,
    settle,
    split_claim,
)

A, B, C = ItemClass.A, ItemClass.B, ItemClass.C


def test_worked_example_1_employee_deductible_and_account_run_out():
    """docs/medical.md, example 1: an employee of 合肥 at a 三级 hospital in 上海."""
    policy = Policy(deductible=100_000, fund_ratio_bp=8_000, annual_cap=500_000)
    acc = Accumulators(deductible_used=95_000, fund_paid=0, account_balance=10_000)
    lines = [Line(12_000, A), Line(10_001, B, 1_000), Line(3_000, C)]
    s = split_claim(lines, policy, acc, Scheme.EMPLOYEE)
    assert s.total == 25_001
    assert (s.class_a, s.class_b, s.class_c) == (12_000, 10_001, 3_000)
    assert s.eligible == 21_001  # 12000 + 10001 × 0.9 = 21000.9 → 21001
    assert s.self_pay_first == 1_000
    assert s.deductible_part == 5_000  # the 50.00 yuan left of the deductible
    assert s.fund == 12_801  # 0.8 × 16001 = 12800.8 → 12801
    assert s.account == 10_000  # the whole balance
    assert s.cash == 2_200
    assert s.fund + s.account + s.cash == s.total
    after = settle(acc, s)
    assert after == Accumulators(deductible_used=100_000, fund_paid=12_801, account_balance=0)
    assert reverse(after, s) == acc


def test_worked_example_2_resident_cap_binds():
    """docs/medical.md, example 2: the year's cap has 5.00 yuan left."""
    policy = Policy(deductible=50_000, fund_ratio_bp=6_000, annual_cap=300_000)
    acc = Accumulators(deductible_used=50_000, fund_paid=299_500, account_balance=0)
    s = split_claim([Line(2_000, A)], policy, acc, Scheme.RESIDENT)
    assert (s.eligible, s.deductible_part, s.fund, s.account, s.cash) == (2_000, 0, 500, 0, 1_500)
    assert settle(acc, s).fund_paid == 300_000
    # The next claim of the year gets nothing from the fund.
    s2 = split_claim([Line(2_000, A)], policy, settle(acc, s), Scheme.RESIDENT)
    assert s2.fund == 0 and s2.cash == 2_000


def test_worked_example_3_both_roundings_are_half_up():
    """docs/medical.md, example 3: 5 fen of 乙 at 10% → 4.5 → 5; 50% of 5 → 2.5 → 3.
    Banker's rounding would give 4 and 2."""
    policy = Policy(deductible=0, fund_ratio_bp=5_000, annual_cap=1_000_000)
    s = split_claim([Line(5, B, 1_000)], policy, Accumulators(account_balance=1), Scheme.EMPLOYEE)
    assert s.eligible == 5
    assert s.fund == 3
    assert (s.account, s.cash) == (1, 1)


def test_worked_example_4_class_c_only_and_resident_has_no_account():
    policy = Policy(deductible=0, fund_ratio_bp=9_000, annual_cap=1_000_000)
    acc = Accumulators(account_balance=99_999)  # ignored: resident scheme
    s = split_claim([Line(8_800, C)], policy, acc, Scheme.RESIDENT)
    assert (s.eligible, s.fund, s.account, s.cash) == (0, 0, 0, 8_800)


def test_eligible_sums_exactly_before_rounding_once():
    # Two 乙 items of 5 fen at 10%: 4.5 + 4.5 = 9 exactly (rounding each would give 10).
    assert eligible_amount([Line(5, B, 1_000), Line(5, B, 1_000)]) == 9


def test_deductible_absorbs_small_claims_whole():
    policy = Policy(deductible=100_000, fund_ratio_bp=8_000, annual_cap=500_000)
    s = split_claim([Line(3_000, A)], policy, Accumulators(account_balance=0), Scheme.EMPLOYEE)
    assert (s.deductible_part, s.fund, s.cash) == (3_000, 0, 3_000)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.5", 1), ("1.5", 2), ("2.5", 3), ("2.4999", 2), ("0", 0), ("12800.8", 12801)],
)
def test_round_half_up(value, expected):
    assert round_half_up(Decimal(value)) == expected


def test_invalid_inputs_are_refused():
    with pytest.raises(ValueError):
        Line(-1, A)
    with pytest.raises(ValueError):
        Line(1, B, 10_001)
    with pytest.raises(ValueError):
        Policy(deductible=0, fund_ratio_bp=10_001, annual_cap=0)


# --- properties -----------------------------------------------------------------------

lines_st = st.lists(
    st.builds(
        Line,
        amount=st.integers(0, 5_000_000),
        item_class=st.sampled_from(list(ItemClass)),
        self_pay_first_bp=st.integers(0, 10_000),
    ),
    max_size=12,
)
policy_st = st.builds(
    Policy,
    deductible=st.integers(0, 500_000),
    fund_ratio_bp=st.integers(0, 10_000),
    annual_cap=st.integers(0, 5_000_000),
)
acc_st = st.builds(
    Accumulators,
    deductible_used=st.integers(0, 600_000),
    fund_paid=st.integers(0, 6_000_000),
    account_balance=st.integers(0, 1_000_000),
)
scheme_st = st.sampled_from(list(Scheme))


@settings(max_examples=400)
@given(lines_st, policy_st, acc_st, scheme_st)
def test_split_sums_to_total_nothing_negative_fund_within_cap(lines, policy, acc, scheme):
    s = split_claim(lines, policy, acc, scheme)
    assert s.fund + s.account + s.cash == s.total == sum(x.amount for x in lines)
    for v in (s.eligible, s.deductible_part, s.fund, s.account, s.cash):
        assert v >= 0
    assert s.eligible <= s.class_a + s.class_b
    assert s.fund <= max(0, policy.annual_cap - acc.fund_paid)
    assert s.fund <= s.eligible - s.deductible_part
    assert s.account <= acc.account_balance
    if scheme is Scheme.RESIDENT:
        assert s.account == 0
    after = settle(acc, s)
    assert after.fund_paid <= max(policy.annual_cap, acc.fund_paid)
    assert after.deductible_used <= max(policy.deductible, acc.deductible_used)
    assert after.account_balance >= 0


@settings(max_examples=200)
@given(st.lists(lines_st, min_size=1, max_size=6), policy_st, acc_st, scheme_st, st.data())
def test_reversal_restores_accumulators_exactly(claims, policy, acc, scheme, data):
    """Settle a year's claims in order, then reverse them all in any order: the
    accumulators come back exactly to where they started."""
    state = acc
    splits = []
    for lines in claims:
        s = split_claim(lines, policy, state, scheme)
        splits.append(s)
        state = settle(state, s)
        assert state.account_balance >= 0
    order = data.draw(st.permutations(range(len(splits))))
    for i in order:
        state = reverse(state, splits[i])
    assert state == acc
