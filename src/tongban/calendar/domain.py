"""Working days in mainland China: public holidays and adjusted working weekends.

The official calendar comes from the `chinese-calendar` library, which follows the
State Council's yearly notices. A year the installed library does not yet know (the
notice comes out each November for the following year) falls back to Monday–Friday,
and operators can enter the published days as overrides (CalendarOverride) until the
library is upgraded.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

import chinese_calendar

Overrides = Mapping[date, bool]
_EMPTY: dict[date, bool] = {}


def library_covers(year: int) -> bool:
    """Whether the installed library has the official calendar of `year`."""
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


def is_workday(day: date, overrides: Overrides = _EMPTY) -> bool:
    if day in overrides:
        return overrides[day]
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def add_working_days(start: date, days: int, overrides: Overrides = _EMPTY) -> date:
    """The `days`-th working day after `start` (the day of acceptance is not counted).
    With `days` = 0, the first working day on or after `start`."""
    if days < 0:
        raise ValueError("days must not be negative")
    current = start
    if days == 0:
        while not is_workday(current, overrides):
            current += timedelta(days=1)
        return current
    counted = 0
    while counted < days:
        current += timedelta(days=1)
        if is_workday(current, overrides):
            counted += 1
    return current


def working_days_between(start: date, end: date, overrides: Overrides = _EMPTY) -> int:
    """Working days in (start, end]; negative when `end` is before `start`."""
    if end < start:
        return -working_days_between(end, start, overrides)
    n = 0
    current = start
    while current < end:
        current += timedelta(days=1)
        if is_workday(current, overrides):
            n += 1
    return n


def deadline_flag(
    today: date, deadline: date, warning_days: int, overrides: Overrides = _EMPTY
) -> str:
    """ok | approaching | overdue for an open item due on `deadline`."""
    if today > deadline:
        return "overdue"
    if working_days_between(today, deadline, overrides) <= warning_days:
        return "approaching"
    return "ok"
