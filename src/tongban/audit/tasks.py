"""Background job of the audit chain: signed checkpoints, made periodically."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from tongban.audit import service
from tongban.config import Settings
from tongban.db import transaction
from tongban.kernel.registry import Job

log = logging.getLogger(__name__)

#: How often the worker looks; a checkpoint is made only when there are new entries and
#: the last one is at least TONGBAN_AUDIT_CHECKPOINT_SECONDS old.
POLL_SECONDS = 60.0


def make_checkpoint(factory: sessionmaker[Session], settings: Settings) -> int | None:
    """Sign a checkpoint of the chain when one is due; returns its seq, if any."""
    with transaction(factory) as session:
        service.refresh_counts(session)  # the audit page's counts by kind (issue 14)
    with transaction(factory) as session:
        cp = service.checkpoint(
            session, settings.node_id, min_interval=settings.audit_checkpoint_seconds
        )
        if cp is None:
            return None
        log.info("audit checkpoint at seq %s (%s…)", cp.seq, cp.hash[:16])
        return int(cp.seq)


JOBS = [Job("audit.checkpoint", POLL_SECONDS, make_checkpoint)]
