"""The card's rules without a database: its lifecycle (states, who may act, the reason a
cancellation needs), card numbers, age bands and concession bits."""

from __future__ import annotations

from datetime import date

import pytest

from tongban.card import domain
from tongban.card.domain import Actor, AgeBand, CardAction, CardStatus, Concession, StepFacts
from tongban.errors import ValidationFailed
from tongban.kernel.lifecycle import IllegalTransition

M = domain.MACHINE


def test_a_holder_reports_a_card_lost_finds_it_and_has_it_replaced() -> None:
    lost = M.next_state(CardStatus.NORMAL, CardAction.REPORT_LOST, Actor.HOLDER, StepFacts())
    assert lost is CardStatus.LOST
    assert M.next_state(lost, CardAction.FOUND, Actor.HOLDER, StepFacts()) is CardStatus.NORMAL
    assert M.next_state(lost, CardAction.REPLACE, Actor.HOLDER, StepFacts()) is CardStatus.REPLACED
    assert (
        M.next_state(CardStatus.NORMAL, CardAction.REPLACE, Actor.CLERK, StepFacts())
        is CardStatus.REPLACED
    )


def test_only_a_clerk_cancels_and_only_with_a_reason() -> None:
    with pytest.raises(IllegalTransition) as refused:
        M.next_state(CardStatus.NORMAL, CardAction.CANCEL, Actor.HOLDER, StepFacts("出国定居"))
    assert refused.value.why == "actor"
    with pytest.raises(ValidationFailed) as missing:
        M.next_state(CardStatus.LOST, CardAction.CANCEL, Actor.CLERK, StepFacts("  "))
    assert [e.field for e in missing.value.errors] == ["reason"]
    assert (
        M.next_state(CardStatus.LOST, CardAction.CANCEL, Actor.CLERK, StepFacts("持卡人死亡"))
        is CardStatus.CANCELLED
    )


def test_a_reason_longer_than_the_limit_is_refused_naming_it() -> None:
    with pytest.raises(ValidationFailed) as long:
        M.next_state(CardStatus.NORMAL, CardAction.REPORT_LOST, Actor.HOLDER, StepFacts("丢" * 501))
    assert long.value.errors[0].field == "reason"


@pytest.mark.parametrize("final", [CardStatus.REPLACED, CardStatus.CANCELLED])
def test_a_replaced_or_cancelled_card_is_final(final: CardStatus) -> None:
    for action in CardAction:
        assert not M.can(final, action, Actor.CLERK)
        assert not M.can(final, action, Actor.HOLDER)
    with pytest.raises(IllegalTransition) as refused:
        M.next_state(final, CardAction.FOUND, Actor.CLERK, StepFacts())
    assert refused.value.why == "state"
    assert "社保卡当前状态为" in refused.value.detail


def test_what_each_actor_is_offered() -> None:
    assert M.allowed_actions(CardStatus.NORMAL, Actor.HOLDER) == [
        CardAction.REPORT_LOST,
        CardAction.REPLACE,
    ]
    assert M.allowed_actions(CardStatus.LOST, Actor.CLERK) == [
        CardAction.FOUND,
        CardAction.REPLACE,
        CardAction.CANCEL,
    ]
    assert M.allowed_actions(CardStatus.NORMAL, None) == []


def test_only_normal_cards_are_honoured() -> None:
    assert set(CardStatus) - domain.REVOKED_STATUSES == {CardStatus.NORMAL}


def test_card_numbers_carry_the_city_a_sequence_and_a_luhn_digit() -> None:
    number = domain.card_number("320100", 42)
    assert number.startswith("32010000000042") and len(number) == 15
    assert domain.valid_card_number(number)
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert not domain.valid_card_number(wrong)
    with pytest.raises(ValueError):
        domain.card_number("3201", 1)
    with pytest.raises(ValueError):
        domain.card_number("320100", 10**8)


@pytest.mark.parametrize(
    ("birth", "on", "band"),
    [
        (date(1950, 6, 1), date(2026, 6, 1), AgeBand.AGE_70_PLUS),
        (date(1956, 6, 2), date(2026, 6, 1), AgeBand.AGE_65_69),  # 70 tomorrow
        (date(1961, 6, 1), date(2026, 6, 1), AgeBand.AGE_65_69),  # 65 today
        (date(1966, 6, 2), date(2026, 6, 1), AgeBand.AGE_18_59),  # 60 tomorrow
        (date(1966, 6, 1), date(2026, 6, 1), AgeBand.AGE_60_64),
        (date(2010, 1, 1), date(2026, 6, 1), AgeBand.AGE_6_17),
        (date(2021, 1, 1), date(2026, 6, 1), AgeBand.UNDER_6),
        (date(2027, 1, 1), date(2026, 6, 1), AgeBand.UNKNOWN),
        (None, date(2026, 6, 1), AgeBand.UNKNOWN),
    ],
)
def test_age_bands_change_on_the_birthday(birth: date | None, on: date, band: AgeBand) -> None:
    assert domain.age_band(birth, on) is band


def test_a_29_february_birthday_counts_on_1_march() -> None:
    assert domain.age_on(date(1964, 2, 29), date(2024, 2, 28)) == 59
    assert domain.age_on(date(1964, 2, 29), date(2025, 3, 1)) == 61


def test_the_birth_date_comes_from_the_id_number() -> None:
    assert domain.birth_date_of("320102195003071234") == date(1950, 3, 7)
    assert domain.birth_date_of("32010219501307123X") is None  # month 13
    assert domain.birth_date_of("3201021950") is None
    assert domain.birth_date_of(None) is None


def test_concession_labels_follow_the_bits() -> None:
    value = int(Concession.DISABLED | Concession.BLOOD_DONOR)
    assert domain.concession_labels(value) == ["残疾人", "无偿献血者"]
    assert domain.CONCESSION_MASK == 0b1111
