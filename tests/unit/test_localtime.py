"""China's calendar day, whatever the server's zone: dates, bounds and the ID number's
birth date check all use it."""

from datetime import UTC, date, datetime

import pytest
from stdnum.cn import ric

from tongban import localtime
from tongban.identity.domain import validate_id_number


def test_a_utc_moment_after_16_00_is_the_next_day_in_china():
    assert localtime.local_date(datetime(2026, 11, 30, 15, 59, tzinfo=UTC)) == date(2026, 11, 30)
    assert localtime.local_date(datetime(2026, 11, 30, 16, 0, tzinfo=UTC)) == date(2026, 12, 1)
    assert localtime.local_dt(datetime(2026, 11, 30, 16, 5, tzinfo=UTC)) == "2026-12-01 00:05"
    assert localtime.local_dt(None) == ""


def test_bounds_of_a_day_range_are_china_midnights():
    lo, hi = localtime.local_bounds(date(2026, 12, 1), date(2026, 12, 1))
    assert lo == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    assert hi == datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
    assert localtime.local_bounds(None, None) == (None, None)


def test_a_number_of_someone_born_today_in_china_is_valid_on_a_utc_server(monkeypatch):
    """At 16:30 UTC on 30 November it is already 1 December in China: a baby born that
    day has a valid number, which a check against the server's UTC date refused."""

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            return datetime(2026, 11, 30, 16, 30, tzinfo=UTC).astimezone(tz)

    monkeypatch.setattr(localtime, "datetime", Clock)
    body = "310101" + "20261201" + "123"
    number = body + ric.calc_check_digit(body + "0")
    assert validate_id_number(number) == number
    later = "310101" + "20261202" + "123"
    with pytest.raises(ValueError, match="出生日期"):
        validate_id_number(later + ric.calc_check_digit(later + "0"))
