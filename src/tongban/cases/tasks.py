"""Background jobs of the cases context."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from tongban.calendar.service import local_date
from tongban.cases import service
from tongban.config import Settings
from tongban.db import transaction, utcnow


def mark_deadlines(factory: sessionmaker[Session], settings: Settings) -> dict[str, int]:
    """Flag open cases approaching or past their statutory deadline (one transaction)."""
    with transaction(factory) as session:
        return service.refresh_deadlines(
            session, local_date(utcnow()), settings.deadline_warning_days
        )
