"""Deadlines of work orders in working hours and working days. Pure Python.

The working-day calendar (public holidays, adjusted weekends) belongs to the `calendar`
context; these functions take its answer as an `is_workday(date) -> bool` predicate, so
they can be tested against any calendar. Working hours are one span per working day
(09:00–17:00 Asia/Shanghai by default).

Rules (categories.json, overridable per jurisdiction or city):
- `same_day`  — by the end of the working day on which the clock starts; a clock started
  after hours or on a rest day runs to the end of the next working day;
- `hours` N   — N working hours;
- `days` N    — by the end of the N-th working day after the start day (the start day is
  not counted, as for applications).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tongban.localtime import CHINA

IsWorkday = Callable[[date], bool]


def weekdays(day: date) -> bool:
    """Monday to Friday: the fallback calendar, used by tests and when none is given."""
    return day.weekday() < 5


@dataclass(frozen=True)
class WorkingHours:
    start: time = time(9, 0)
    end: time = time(17, 0)
    tz: ZoneInfo = CHINA

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("working hours must end after they start")

    @property
    def minutes_per_day(self) -> int:
        return (self.end.hour * 60 + self.end.minute) - (self.start.hour * 60 + self.start.minute)

    def opens(self, day: date) -> datetime:
        return datetime.combine(day, self.start, self.tz)

    def closes(self, day: date) -> datetime:
        return datetime.combine(day, self.end, self.tz)


DEFAULT_HOURS = WorkingHours()


@dataclass(frozen=True)
class DeadlineRule:
    unit: str  # same_day | hours | days
    amount: int = 0

    def __post_init__(self) -> None:
        if self.unit not in ("same_day", "hours", "days"):
            raise ValueError(f"unknown deadline unit {self.unit!r}")
        if self.unit != "same_day" and self.amount < 1:
            raise ValueError("a deadline of hours or days needs a positive amount")

    @property
    def label(self) -> str:
        if self.unit == "same_day":
            return "当日办结"
        if self.unit == "hours":
            return f"{self.amount} 个工作小时"
        return f"{self.amount} 个工作日"

    @classmethod
    def parse(cls, raw: dict[str, object]) -> DeadlineRule:
        amount = raw.get("amount", 0)
        return cls(str(raw["unit"]), int(amount) if isinstance(amount, int | str) else 0)


def _next_workday(day: date, is_workday: IsWorkday) -> date:
    for _ in range(366):
        if is_workday(day):
            return day
        day += timedelta(days=1)
    raise ValueError("no working day within a year")


def due_at(
    start: datetime,
    rule: DeadlineRule,
    is_workday: IsWorkday = weekdays,
    hours: WorkingHours = DEFAULT_HOURS,
) -> datetime:
    """When a work order whose clock starts at `start` (aware) is due, in UTC."""
    local = start.astimezone(hours.tz)
    if rule.unit == "hours":
        return add_working_minutes(start, rule.amount * 60, is_workday, hours)
    day = local.date()
    if rule.unit == "same_day":
        if not is_workday(day) or local >= hours.closes(day):
            day = _next_workday(day + timedelta(days=1), is_workday)
        return hours.closes(day).astimezone(UTC)
    counted = 0
    while counted < rule.amount:
        day += timedelta(days=1)
        if is_workday(day):
            counted += 1
    return hours.closes(day).astimezone(UTC)


def add_working_minutes(
    start: datetime,
    minutes: int,
    is_workday: IsWorkday = weekdays,
    hours: WorkingHours = DEFAULT_HOURS,
) -> datetime:
    """The moment `minutes` working minutes after `start`, in UTC."""
    if minutes < 0:
        raise ValueError("minutes must not be negative")
    local = start.astimezone(hours.tz)
    day = local.date()
    cursor = local
    remaining = minutes
    for _ in range(3660):
        if is_workday(day):
            opens, closes = hours.opens(day), hours.closes(day)
            cursor = max(cursor, opens)
            if cursor < closes:
                available = int((closes - cursor).total_seconds() // 60)
                if remaining <= available:
                    return (cursor + timedelta(minutes=remaining)).astimezone(UTC)
                remaining -= available
        day += timedelta(days=1)
        cursor = hours.opens(day)
    raise ValueError("deadline beyond ten years")


def working_minutes_between(
    a: datetime,
    b: datetime,
    is_workday: IsWorkday = weekdays,
    hours: WorkingHours = DEFAULT_HOURS,
) -> int:
    """Working minutes in [a, b]; negative when `b` is before `a`."""
    if b < a:
        return -working_minutes_between(b, a, is_workday, hours)
    la, lb = a.astimezone(hours.tz), b.astimezone(hours.tz)
    total = 0.0
    day = la.date()
    while day <= lb.date():
        if is_workday(day):
            lo = max(la, hours.opens(day))
            hi = min(lb, hours.closes(day))
            if hi > lo:
                total += (hi - lo).total_seconds() / 60
        day += timedelta(days=1)
    return int(total)


def deadline_flag(
    now: datetime,
    due: datetime,
    allotted_minutes: int,
    is_workday: IsWorkday = weekdays,
    hours: WorkingHours = DEFAULT_HOURS,
    warn_fraction: float = 0.25,
) -> str:
    """ok | approaching | overdue: approaching once no more than `warn_fraction` of the
    allotted working time is left (at least one working hour)."""
    if now > due:
        return "overdue"
    left = working_minutes_between(now, due, is_workday, hours)
    if left <= max(60, int(allotted_minutes * warn_fraction)):
        return "approaching"
    return "ok"


def escalation_level(
    now: datetime,
    due: datetime,
    supervisor_after_minutes: int,
    is_workday: IsWorkday = weekdays,
    hours: WorkingHours = DEFAULT_HOURS,
) -> int:
    """0 before the deadline; 1 (the authority's head) once it has passed; 2 (the
    supervisor) once it is overdue by more than `supervisor_after_minutes` working minutes."""
    if now <= due:
        return 0
    if working_minutes_between(due, now, is_workday, hours) > supervisor_after_minutes:
        return 2
    return 1
