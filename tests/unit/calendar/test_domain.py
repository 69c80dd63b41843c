from datetime import date

import pytest

from tongban.calendar.domain import (
    add_working_days,
    deadline_flag,
    is_workday,
    library_covers,
    working_days_between,
)


def test_national_day_golden_week_2026_is_skipped():
    # 2026-10-01..07 are holidays; 30 Sep + 1 working day is 8 Oct.
    assert add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 8)


def test_adjusted_working_weekend_counts():
    # 2026-09-20 (a Sunday) is an adjusted working day for the National Day holiday.
    assert date(2026, 9, 20).weekday() == 6
    assert is_workday(date(2026, 9, 20))
    assert add_working_days(date(2026, 9, 19), 1) == date(2026, 9, 20)


def test_spring_festival_2026():
    # 2026 Spring Festival holiday: 15–23 Feb; 14 Feb (Sat) and 28 Feb (Sat) are worked.
    assert not is_workday(date(2026, 2, 17))
    assert is_workday(date(2026, 2, 14))
    assert is_workday(date(2026, 2, 28))


def test_twenty_working_days_across_golden_week():
    # 28–30 Sep (3), 8–9 Oct (5), Sat 10 Oct adjusted working day (6),
    # 12–16 (11), 19–23 (16), 26–29 (20).
    d = add_working_days(date(2026, 9, 25), 20)
    assert working_days_between(date(2026, 9, 25), d) == 20
    assert d == date(2026, 10, 29)


def test_zero_days_is_next_working_day():
    assert add_working_days(date(2026, 10, 3), 0) == date(2026, 10, 8)
    assert add_working_days(date(2026, 10, 9), 0) == date(2026, 10, 9)


def test_unknown_year_falls_back_to_weekdays_and_overrides_apply():
    assert not library_covers(2099)
    assert is_workday(date(2099, 1, 1))  # a Thursday, library has no data
    overrides = {date(2099, 1, 1): False}
    assert not is_workday(date(2099, 1, 1), overrides)
    assert add_working_days(date(2098, 12, 31), 1, overrides) == date(2099, 1, 2)


def test_negative_days_rejected():
    with pytest.raises(ValueError):
        add_working_days(date(2026, 1, 5), -1)


def test_deadline_flags():
    due = date(2026, 11, 27)  # Friday
    assert deadline_flag(date(2026, 11, 16), due, 2) == "ok"
    assert deadline_flag(date(2026, 11, 25), due, 2) == "approaching"
    assert deadline_flag(date(2026, 11, 27), due, 2) == "approaching"
    assert deadline_flag(date(2026, 11, 30), due, 2) == "overdue"
