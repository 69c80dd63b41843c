"""Background job of the card context: in a federation, send this node's revocation lists
to the other nodes again well before the copies they hold (and pass to their gates)
expire."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from tongban.card import federation
from tongban.card.revocations import REVOCATIONS_LIFETIME
from tongban.config import Settings
from tongban.db import transaction
from tongban.kernel.registry import Job

log = logging.getLogger(__name__)

#: A list is valid REVOCATIONS_LIFETIME after it was signed: re-sending every quarter of
#: it keeps every copy valid through a few lost messages.
REFRESH_SECONDS = REVOCATIONS_LIFETIME.total_seconds() / 4


def refresh_revocations(factory: sessionmaker[Session], settings: Settings) -> int:
    """Queue the revocation list of every jurisdiction this node serves for the other
    nodes (nothing when not federated); how many messages."""
    if not federation.federated(settings):
        return 0
    with transaction(factory) as session:
        n = federation.publish_all(session)
    if n:
        log.info("queued %s card revocation list message(s) for the other nodes", n)
    return n


JOBS = [Job("card.revocations_refresh", REFRESH_SECONDS, refresh_revocations)]
