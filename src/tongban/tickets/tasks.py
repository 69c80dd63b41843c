"""Background jobs of the tickets context: deadline reminders and escalation, overdue
supervision orders, feedback timeouts, slipped milestones of major tasks."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from tongban.config import Settings
from tongban.db import transaction
from tongban.kernel.registry import Job
from tongban.tickets.config import get_ticket_settings
from tongban.tickets.service import common, majortasks, supervision


def watch_deadlines(factory: sessionmaker[Session], settings: Settings) -> dict[str, int]:
    """One pass over open work orders and major tasks (one transaction)."""
    with transaction(factory) as session:
        counts = supervision.run_deadlines(session)
        counts["tasks_slipped"] = majortasks.flag_slipped(session, common.today())
        return counts


JOBS = [Job("tickets.deadlines", get_ticket_settings().job_interval, watch_deadlines)]
