"""Background jobs of the medical context: clear the month that just ended, and again
any open period whose statements the two sides have not agreed on; send the
insured nodes what this node still owes them (confirmations, reversals); resolve the
reservations this node holds that no confirmation reached in time."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from tongban.config import Settings
from tongban.db import transaction
from tongban.kernel.registry import Job
from tongban.medical import clearing_service, insured, settlement

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


def reconcile_open_periods(factory: sessionmaker[Session], settings: Settings) -> list[str]:
    """Clear again every cleared period that is still open: a confirmation or reversal
    that reached the insured node since resolves its difference, the other side's
    changed figures reach this one, a node that was down is asked again. One
    transaction per period."""
    with transaction(factory) as session:
        periods = clearing_service.open_cleared_periods(session)
    for period in periods:
        with transaction(factory) as session:
            clearing_service.clear_period(session, period)
    return periods


def fold_clearing_tally(factory: sessionmaker[Session], settings: Settings) -> int:
    """Fold the settlements and reversals committed since the last fold into the
    clearing tally (one transaction), so the clearing command has only a short tail to
    fold; how many chain entries were read."""
    with transaction(factory) as session:
        return clearing_service.fold_tally(session).entries


JOBS = [
    Job("medical.fold_clearing_tally", 60.0, fold_clearing_tally),
    Job("medical.clear_previous_month", 3600.0, clear_previous_month),
    Job("medical.reconcile_statements", 3600.0, reconcile_open_periods),
    # The hospital's side: a confirmation or reversal the insured node did not
    # acknowledge when it was made.
    Job("medical.sync_insured", 15.0, settlement.sync_owed),
    # The insured side: reservations past their expiry, resolved by asking the
    # hospital's node whether its settlement exists.
    Job("medical.resolve_reservations", 15.0, insured.resolve_overdue),
]
