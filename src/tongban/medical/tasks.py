"""Background jobs of the medical context: clear the month that just ended."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from tongban.config import Settings
from tongban.db import transaction
from tongban.kernel.registry import Job
from tongban.medical import clearing_service

log = logging.getLogger(__name__)


def clear_previous_month(factory: sessionmaker[Session], settings: Settings) -> str | None:
    """Clear last month once it is over and not yet cleared (one transaction); the
    agencies then confirm or dispute its statements."""
    with transaction(factory) as session:
        run = clearing_service.clear_previous_month(session)
        if run is None:
            return None
        log.info("cleared %s: %d claim(s), digest %s", run.period, run.claim_count, run.digest)
        return run.period


JOBS = [Job("medical.clear_previous_month", 3600.0, clear_previous_month)]
