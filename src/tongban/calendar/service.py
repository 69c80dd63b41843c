"""Deadline arithmetic with the operator's overrides applied."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.calendar import domain
from tongban.calendar.models import CalendarOverride

SHANGHAI = ZoneInfo("Asia/Shanghai")


def overrides(session: Session) -> dict[date, bool]:
    return {o.day: o.is_workday for o in session.scalars(select(CalendarOverride))}


def local_date(moment: datetime) -> date:
    """The calendar day in China of a UTC moment."""
    return moment.astimezone(SHANGHAI).date()


def add_working_days(session: Session, start: date, days: int) -> date:
    """The deadline `days` working days after `start`."""
    return domain.add_working_days(start, days, overrides(session))


def workday_predicate(session: Session) -> Callable[[date], bool]:
    """Whether a day is a working day, with the operator's overrides read once (for
    jobs and calculations that test many days, e.g. working-hours deadlines)."""
    days = overrides(session)
    return lambda day: domain.is_workday(day, days)


def deadline_flagger(session: Session, today: date, warning_days: int) -> Callable[[date], str]:
    """ok | approaching | overdue for deadlines seen from `today`; the overrides are read
    once, so a job can flag many items with one query."""
    days = overrides(session)
    return lambda deadline: domain.deadline_flag(today, deadline, warning_days, days)


def set_override(session: Session, day: date, is_workday: bool, note: str = "") -> None:
    """Declare `day` a working day or a holiday (e.g. from a newly published State Council notice)."""
    row = session.get(CalendarOverride, day)
    if row is None:
        session.add(CalendarOverride(day=day, is_workday=is_workday, note=note))
    else:
        row.is_workday = is_workday
        row.note = note
    session.flush()
