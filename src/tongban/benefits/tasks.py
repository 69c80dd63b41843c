"""The benefits context's daily job: birthdays (age rules such as 高龄津贴 and
老年人公交优待 are evaluated on the day a person reaches the age)."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from tongban.benefits import service
from tongban.config import Settings
from tongban.db import transaction
from tongban.kernel.registry import Job

log = logging.getLogger(__name__)


def birthdays(factory: sessionmaker[Session], settings: Settings) -> int:
    """Evaluate today's birthdays (one transaction); idempotent for the day, so running
    it hourly is harmless and catches a day the worker was down at midnight."""
    with transaction(factory) as session:
        n = service.birthdays(session)
    if n:
        log.info("benefits: %d birthdays evaluated", n)
    return n


JOBS = [Job("benefits.birthdays", 3600.0, birthdays)]
