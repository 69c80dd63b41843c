"""One numbering service for human-readable numbers (case numbers, work-order numbers,
licence serials): a counter row per (scope, period), taken and bumped in one atomic
``INSERT … ON CONFLICT DO UPDATE … RETURNING`` statement. The row stays locked until
the caller's transaction ends, so two requests never get one number, and a rolled
back transaction gives its number back. The format of a number is the caller's::

    from tongban.kernel import numbering

    seq = numbering.next_value(session, "case:310100", "20261128")   # 1, 2, 3 …
    number = f"310100{'20261128'}{seq:06d}"

    serial = numbering.next_value(session, "licence:LT01:91310000MA1K000000")  # no period

``scope`` names what is counted and for whom (prefix it with the context: ``case:``,
``ticket:``, ``licence:``); ``period`` restarts the count (a day ``YYYYMMDD``, a year,
or ``""`` for a counter that never restarts).
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Integer, String, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from tongban.db import Base


class NumberCounter(Base):
    """Per scope and period, the last number handed out."""

    __tablename__ = "number_counter"
    scope: Mapped[str] = mapped_column(String(80), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True, default="")
    last: Mapped[int] = mapped_column(Integer, default=0)


def next_value(session: Session, scope: str, period: str = "") -> int:
    """The next number of `scope` in `period` (1 for the first), counted in the
    caller's transaction."""
    name = session.get_bind().dialect.name
    dialect_insert = postgresql.insert if name == "postgresql" else sqlite.insert
    table = cast(Table, NumberCounter.__table__)
    stmt = (
        dialect_insert(table)
        .values(scope=scope, period=period, last=1)
        .on_conflict_do_update(
            index_elements=[table.c.scope, table.c.period],
            set_={"last": table.c.last + 1},
        )
        .returning(table.c.last)
    )
    return int(session.execute(stmt).scalar_one())


def peek(session: Session, scope: str, period: str = "") -> int:
    """The last number handed out (0 if none), without taking one."""
    row = session.get(NumberCounter, (scope, period))
    return row.last if row else 0
