from __future__ import annotations

from datetime import date

from sqlalchemy import Boolean, Date, String
from sqlalchemy.orm import Mapped, mapped_column

from tongban.db import Base


class CalendarOverride(Base):
    """A day the operator declares a working day or a holiday, overriding the library:
    for a year the State Council has announced but the installed library does not know yet,
    or a local arrangement."""

    __tablename__ = "calendar_override"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_workday: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(String(120), default="")
