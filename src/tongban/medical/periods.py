"""Clearing periods as settlement and reversal see them: which period is open, and the
run row that serialises a reversal against the closing of its period."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tongban.errors import Conflict
from tongban.medical import domain
from tongban.medical.models import ClearingRun


def lock_run(session: Session, period: str) -> ClearingRun:
    """The clearing run row of `period`, created if missing, locked FOR UPDATE: a
    reversal and the closing of the period are serialised on it."""
    domain.parse_period(period)
    for _ in range(3):
        run = session.scalar(
            select(ClearingRun)
            .where(ClearingRun.period == period)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if run is not None:
            return run
        try:
            with session.begin_nested():
                session.add(ClearingRun(period=period))
        except IntegrityError:
            continue
    raise Conflict("清算期间创建冲突，请重试", type="period-conflict")


def open_period_from(session: Session, period: str, *, lock: bool = False) -> str:
    """`period` itself while it is open, else the first open period after it."""
    while True:
        status: str | None
        if lock:
            status = lock_run(session, period).status
        else:
            status = session.scalar(select(ClearingRun.status).where(ClearingRun.period == period))
        if status != "closed":
            return period
        period = domain.next_period(period)
