"""Time in China. The platform stores UTC; it dates, counts days and shows times in
China's one time zone (UTC+8, no daylight saving), whatever the server's own zone is.
Pure: no database, no framework, so domain modules may use it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")


def local_date(moment: datetime) -> date:
    """The calendar day in China of a UTC moment."""
    return moment.astimezone(CHINA).date()


def today() -> date:
    """Today's date in China (from 16:00 UTC it is the UTC date's next day)."""
    return local_date(datetime.now(UTC))


def local_dt(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC moment as China's local time, for a page or a message; "" for None."""
    if value is None:
        return ""
    return value.astimezone(CHINA).strftime(fmt)


def local_bounds(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    """[start 00:00, the day after end 00:00) in China's time, for a timestamp column."""
    lo = datetime.combine(start, time.min, CHINA) if start else None
    hi = datetime.combine(end + timedelta(days=1), time.min, CHINA) if end else None
    return lo, hi
