"""Property tests of the shared bounded input types (tongban.types): whatever a client
sends, a value is either accepted inside its bounds or refused with ValueError /
ValidationError — never an exception of another kind, never a value outside them."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from tongban.types import (
    INT32_MAX,
    MAX_FEN,
    MAX_YEAR,
    MIN_YEAR,
    Fen,
    Int32,
    Latitude,
    Longitude,
    NonNegInt32,
    SaneDate,
    SaneDatetime,
    Yuan,
    parse_form_value,
)


class Body(BaseModel):
    lat: Latitude
    lon: Longitude
    amount: Fen
    count: NonNegInt32
    n: Int32


@given(
    lat=st.floats(allow_nan=True, allow_infinity=True),
    lon=st.floats(allow_nan=True, allow_infinity=True),
    amount=st.integers(),
    count=st.integers(),
    n=st.integers(),
)
def test_numbers_are_accepted_only_within_bounds(lat, lon, amount, count, n) -> None:  # type: ignore[no-untyped-def]
    ok = (
        math.isfinite(lat) and -90 <= lat <= 90
        and math.isfinite(lon) and -180 <= lon <= 180
        and 0 <= amount <= MAX_FEN
        and 0 <= count <= INT32_MAX
        and -(2**31) <= n <= INT32_MAX
    )  # fmt: skip
    try:
        body = Body(lat=lat, lon=lon, amount=amount, count=count, n=n)
    except ValidationError:
        assert not ok
    else:
        assert ok and body.amount == amount


@given(st.text(max_size=40))
def test_any_typed_price_is_a_bounded_two_decimal_amount_or_a_value_error(text) -> None:  # type: ignore[no-untyped-def]
    try:
        value = parse_form_value(Yuan, text)
    except ValueError as e:
        assert str(e)  # a message for the page
        return
    assert isinstance(value, Decimal) and value.is_finite()
    assert 0 <= value <= Decimal(MAX_FEN) / 100
    fen = value * 100
    assert fen == fen.to_integral_value()


@pytest.mark.parametrize("text", ["sNaN", "NaN", "Infinity", "-Infinity", "inf", "1e400", "-0.01"])
def test_the_prices_that_once_gave_500_are_refused(text) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        parse_form_value(Yuan, text)


@given(st.text(max_size=30))
def test_any_typed_coordinate_is_finite_or_refused(text) -> None:  # type: ignore[no-untyped-def]
    try:
        value = parse_form_value(Latitude, text)
    except ValueError:
        return
    assert math.isfinite(value) and -90 <= value <= 90


OFFSETS = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-9, minutes=-30))]
)


@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=OFFSETS)
)
def test_datetimes_must_be_aware_and_sane(moment) -> None:  # type: ignore[no-untyped-def]
    try:
        value = parse_form_value(SaneDatetime, moment.isoformat())
    except ValueError:
        aware = moment.utcoffset() is not None
        assert not aware or not MIN_YEAR <= moment.astimezone(UTC).year < MAX_YEAR
        return
    assert value.tzinfo is not None
    assert MIN_YEAR <= value.astimezone(UTC).year < MAX_YEAR
    # Whatever is accepted survives a century of arithmetic (licence validity, deadlines).
    assert value + timedelta(days=36_600) > value


@given(st.dates())
def test_dates_are_within_range(day) -> None:  # type: ignore[no-untyped-def]
    try:
        value = parse_form_value(SaneDate, day.isoformat())
    except ValueError:
        assert not MIN_YEAR <= day.year < MAX_YEAR
    else:
        assert value == day


def test_naive_and_far_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="时区"):
        parse_form_value(SaneDatetime, "2026-01-01T00:00:00")
    with pytest.raises(ValueError, match="2200"):
        parse_form_value(SaneDatetime, "9999-12-31T23:59:59+08:00")
    shanghai = timezone(timedelta(hours=8))
    ok = parse_form_value(SaneDatetime, "2026-01-01T08:00:00+08:00")
    assert ok == datetime(2026, 1, 1, 8, tzinfo=shanghai)
    assert parse_form_value(SaneDate, "2026-03-02") == date(2026, 3, 2)
