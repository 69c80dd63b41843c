"""Background job of identity: forget stale sign-in failure counts and old sessions."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, or_
from sqlalchemy.orm import Session, sessionmaker

from tongban.config import Settings
from tongban.db import transaction, utcnow
from tongban.identity import throttle
from tongban.identity.models import WebSession
from tongban.kernel.registry import Job

log = logging.getLogger(__name__)

#: Ended or expired sessions are kept this long (who was signed in from where, and why
#: the session ended), then deleted.
SESSION_RETENTION = timedelta(days=90)


def prune(factory: sessionmaker[Session], settings: Settings) -> tuple[int, int]:
    """Delete throttle rows past their window and sessions ended long ago; returns the
    counts. A spray of guessed usernames leaves one row per username and client, so
    without this the table would only grow."""
    cutoff = utcnow() - SESSION_RETENTION
    with transaction(factory) as session:
        counts = throttle.prune(session, settings)
        result = session.execute(
            delete(WebSession).where(
                or_(WebSession.ended_at < cutoff, WebSession.expires_at < cutoff)
            )
        )
        sessions = int(getattr(result, "rowcount", 0) or 0)
    if counts or sessions:
        log.info("identity: pruned %s throttle rows, %s old sessions", counts, sessions)
    return counts, sessions


JOBS = [Job("identity.prune", 600.0, prune)]
