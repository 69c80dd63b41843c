"""What every use case of applications writes besides its case: the case number (kernel
numbering). Events are written by the kernel (``tongban.kernel.history.record``); the
messages that keep the other copy of a case in step are sent by ``replica`` (the
kernel's replication)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tongban.calendar import service as calendar
from tongban.cases import domain
from tongban.db import utcnow
from tongban.kernel import numbering


def next_number(session: Session, city_code: str) -> str:
    """The next case number of `city_code` today (the kernel's per-scope daily counter)."""
    day = calendar.local_date(utcnow()).strftime("%Y%m%d")
    return domain.case_number(
        city_code, day, numbering.next_value(session, f"case:{city_code}", day)
    )
