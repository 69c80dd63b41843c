"""Working-hours and working-day deadlines of work orders."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from tongban.localtime import CHINA as SHANGHAI
from tongban.tickets import deadlines
from tongban.tickets.deadlines import DeadlineRule, WorkingHours


def local(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


# 2026-01-05 is a Monday; weekdays() is the Monday–Friday calendar.


def test_same_day_runs_to_the_end_of_the_working_day():
    due = deadlines.due_at(local(2026, 1, 5, 10), DeadlineRule("same_day"))
    assert due == local(2026, 1, 5, 17).astimezone(UTC)


def test_same_day_after_hours_or_at_the_weekend_runs_to_the_next_working_day():
    assert deadlines.due_at(local(2026, 1, 5, 18), DeadlineRule("same_day")) == local(
        2026, 1, 6, 17
    ).astimezone(UTC)
    # Friday evening → Monday
    assert deadlines.due_at(local(2026, 1, 9, 20), DeadlineRule("same_day")) == local(
        2026, 1, 12, 17
    ).astimezone(UTC)


def test_working_days_do_not_count_the_start_day_and_skip_rest_days():
    # Monday + 3 working days = Thursday, end of day
    assert deadlines.due_at(local(2026, 1, 5), DeadlineRule("days", 3)) == local(
        2026, 1, 8, 17
    ).astimezone(UTC)
    # Thursday + 13 working days skips two weekends
    assert deadlines.due_at(local(2026, 1, 8), DeadlineRule("days", 13)) == local(
        2026, 1, 27, 17
    ).astimezone(UTC)


def test_working_hours_carry_over_the_night_and_the_weekend():
    # Friday 16:00 + 2 working hours = Monday 10:00
    assert deadlines.due_at(local(2026, 1, 9, 16), DeadlineRule("hours", 2)) == local(
        2026, 1, 12, 10
    ).astimezone(UTC)
    # Before opening: the clock starts at 09:00
    assert deadlines.add_working_minutes(local(2026, 1, 5, 7), 30) == local(
        2026, 1, 5, 9, 30
    ).astimezone(UTC)


def test_holidays_come_from_the_calendar_given():
    holiday = date(2026, 1, 6)

    def cal(d: date) -> bool:
        return d.weekday() < 5 and d != holiday

    assert deadlines.due_at(local(2026, 1, 5), DeadlineRule("days", 1), cal) == local(
        2026, 1, 7, 17
    ).astimezone(UTC)


def test_working_minutes_between_counts_only_working_time():
    assert deadlines.working_minutes_between(local(2026, 1, 9, 16), local(2026, 1, 12, 10)) == 120
    assert deadlines.working_minutes_between(local(2026, 1, 12, 10), local(2026, 1, 9, 16)) == -120


def test_flags_and_escalation_levels():
    due = local(2026, 1, 8, 17)
    allotted = 3 * 8 * 60
    assert deadlines.deadline_flag(local(2026, 1, 5, 9), due, allotted) == "ok"
    assert deadlines.deadline_flag(local(2026, 1, 8, 12), due, allotted) == "approaching"
    assert deadlines.deadline_flag(local(2026, 1, 8, 17, 1), due, allotted) == "overdue"
    assert deadlines.escalation_level(local(2026, 1, 8, 16), due, 480) == 0
    assert deadlines.escalation_level(local(2026, 1, 9, 12), due, 480) == 1
    assert deadlines.escalation_level(local(2026, 1, 12, 12), due, 480) == 2


def test_custom_working_hours_and_bad_rules():
    short = WorkingHours(time(8, 30), time(12, 0))
    assert short.minutes_per_day == 210
    # 11:30 + 1 working hour: 30 minutes today, 30 tomorrow from 08:30
    due = deadlines.due_at(local(2026, 1, 5, 11, 30), DeadlineRule("hours", 1), hours=short)
    assert due == local(2026, 1, 6, 9, 0).astimezone(UTC)
    with pytest.raises(ValueError):
        DeadlineRule("weeks", 1)
    with pytest.raises(ValueError):
        DeadlineRule("days", 0)
    assert DeadlineRule("days", 13).label == "13 个工作日"
