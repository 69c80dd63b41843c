"""Background jobs of the cases context."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from tongban.calendar.service import local_date
from tongban.cases import service
from tongban.config import Settings
from tongban.db import transaction, utcnow
from tongban.kernel.registry import Job


def mark_deadlines(factory: sessionmaker[Session], settings: Settings) -> dict[str, int]:
    """Flag open cases approaching or past their statutory deadline (one transaction)."""
    with transaction(factory) as session:
        return service.refresh_deadlines(
            session, local_date(utcnow()), settings.deadline_warning_days
        )


def lapse_corrections(factory: sessionmaker[Session], _settings: Settings) -> dict[str, int]:
    """Remind, then close as withdrawn, corrections not answered by their deadline."""
    with transaction(factory) as session:
        return service.lapse_corrections(session, local_date(utcnow()))


#: Seconds between refreshes of the deadline flags of open cases.
DEADLINE_INTERVAL = 300.0

JOBS = [
    Job("cases.deadlines", DEADLINE_INTERVAL, mark_deadlines),
    Job("cases.corrections", DEADLINE_INTERVAL, lapse_corrections),
]
