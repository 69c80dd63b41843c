"""Background jobs of the dashboard: fold new events into this node's aggregates, and
publish them to the other nodes of a federation."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from tongban.config import Settings
from tongban.dashboard import federation, service
from tongban.dashboard.config import dashboard_settings
from tongban.db import transaction
from tongban.kernel.registry import Job

log = logging.getLogger(__name__)


def refresh(factory: sessionmaker[Session], settings: Settings) -> int:
    """Fold the events recorded since the last refresh; how many."""
    conf = dashboard_settings()
    with transaction(factory) as session:
        result = service.refresh(
            session,
            service.owns_for(settings.served_jurisdictions),
            settle=timedelta(seconds=conf.settle_seconds),
        )
    if result.events:
        log.info("dashboard: folded %s event(s) into %s cell(s)", result.events, result.cells)
    return result.events


def publish(factory: sessionmaker[Session], settings: Settings) -> int:
    """Queue this node's aggregates for the other nodes (nothing when not federated)."""
    if not federation.federated(settings):
        return 0
    with transaction(factory) as session:
        return federation.publish_all(session)


JOBS = [
    Job("dashboard.refresh", dashboard_settings().refresh_seconds, refresh),
    Job("dashboard.publish", dashboard_settings().publish_seconds, publish),
]
