"""How long a filing made at a treatment counter is valid (the insured node's rule)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tongban.medical.domain import COUNTER_FILING_DAYS, counter_filing_until

TODAY = date(2026, 3, 1)


def test_by_default_it_lasts_the_longest_a_counter_may_file_for() -> None:
    assert counter_filing_until(TODAY, None) == TODAY + timedelta(days=COUNTER_FILING_DAYS)


def test_a_shorter_validity_is_kept() -> None:
    assert counter_filing_until(TODAY, TODAY) == TODAY
    assert counter_filing_until(TODAY, date(2026, 3, 31)) == date(2026, 3, 31)


@pytest.mark.parametrize(
    ("valid_to", "why"),
    [
        (TODAY - timedelta(days=1), "不能早于今天"),
        (TODAY + timedelta(days=COUNTER_FILING_DAYS + 1), f"最长 {COUNTER_FILING_DAYS} 天"),
    ],
)
def test_a_past_or_too_long_validity_is_refused(valid_to: date, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        counter_filing_until(TODAY, valid_to)
