"""Deadline arithmetic with the operator's overrides applied."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.calendar import domain
from tongban.calendar.models import CalendarOverride
from tongban.localtime import local_date as local_date  # the calendar's public name


def overrides(session: Session) -> dict[date, bool]:
    return {o.day: o.is_workday for o in session.scalars(select(CalendarOverride))}


def add_working_days(session: Session, start: date, days: int) -> date:
    """The deadline `days` working days after `start`."""
    return domain.add_working_days(start, days, overrides(session))


def working_days_between(session: Session, start: date, end: date) -> int:
    """Working days in (start, end] (negative when `end` is before `start`)."""
    return domain.working_days_between(start, end, overrides(session))


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


def _override_state(row: CalendarOverride | None) -> dict[str, object] | None:
    return None if row is None else {"is_workday": row.is_workday, "note": row.note}


def _record_change(
    session: Session,
    what: str,
    day: date,
    actor: str,
    before: dict[str, object] | None,
    after: dict[str, object] | None,
    reason: str | None,
) -> None:
    from tongban.audit import service as audit

    audit.record_change(
        session,
        what,
        f"calendar:{day.isoformat()}",
        actor,
        before=before,
        after=after,
        reason=reason,
        day=day,
    )


def set_override(
    session: Session,
    day: date,
    is_workday: bool,
    note: str = "",
    *,
    actor: str = "system",
    reason: str | None = None,
) -> None:
    """Declare `day` a working day or a holiday (e.g. from a newly published State Council
    notice). Statutory deadlines move with it, so the change is an entry of the audit
    chain ("change", calendar.override.set): who, when, the day, before and after, why
    (`reason`, default the note)."""
    row = session.get(CalendarOverride, day)
    before = _override_state(row)
    if row is None:
        row = CalendarOverride(day=day, is_workday=is_workday, note=note)
        session.add(row)
    else:
        row.is_workday = is_workday
        row.note = note
    session.flush()
    after = _override_state(row)
    if after != before:
        _record_change(
            session, "calendar.override.set", day, actor, before, after, reason or note or None
        )


def remove_override(
    session: Session, day: date, *, actor: str = "system", reason: str | None = None
) -> bool:
    """Drop the operator's override of `day` (the library's calendar applies again);
    False when there was none. An entry of the audit chain (calendar.override.removed)."""
    row = session.get(CalendarOverride, day)
    if row is None:
        return False
    before = _override_state(row)
    session.delete(row)
    session.flush()
    _record_change(session, "calendar.override.removed", day, actor, before, None, reason)
    return True
