"""Background jobs of the emergency context: the watch (low-stock and expiry alerts;
mutual aid past its time targets is escalated) and the periodic publication of this
node's stock aggregates to the other nodes (kept fresh after a restart or a lost
message: a receiver applies only a newer one)."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from tongban.config import Settings
from tongban.db import transaction
from tongban.emergency import alerts, deadlines, sharing
from tongban.kernel.registry import Job

log = logging.getLogger(__name__)

WATCH_SECONDS = 120.0
SHARE_SECONDS = 3600.0


def watch(factory: sessionmaker[Session], settings: Settings) -> dict[str, int]:
    """One pass of the watch (one transaction); counts of what it raised and resolved."""
    with transaction(factory) as session:
        counts = alerts.check_stock(session)
        counts.update({f"aid_{k}": v for k, v in deadlines.watch(session).items()})
    if any(counts.values()):
        log.info("emergency watch: %s", counts)
    return counts


def share(factory: sessionmaker[Session], settings: Settings) -> int:
    """Queue this node's stock aggregates for the other nodes; how many messages."""
    if not sharing.federated(settings):
        return 0
    with transaction(factory) as session:
        return sharing.publish_all(session)


JOBS = [
    Job("emergency.watch", WATCH_SECONDS, watch),
    Job("emergency.share", SHARE_SECONDS, share),
]
