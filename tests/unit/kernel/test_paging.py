"""The cursor of kernel.paging: round trip, tampering, sizes, date ranges."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Column, Date, DateTime, Integer, MetaData, String, Table, Uuid

from tongban.errors import ValidationFailed
from tongban.kernel import paging

T = Table(
    "t",
    MetaData(),
    Column("id", Uuid),
    Column("at", DateTime(timezone=True)),
    Column("day", Date),
    Column("n", Integer),
    Column("s", String),
)
ORDER = paging.Order(
    "test.order",
    (
        paging.Key(T.c.day, date, nullable=True),
        paging.Key(T.c.at, datetime, desc=True),
        paging.Key(T.c.n, int),
        paging.Key(T.c.s, str),
        paging.Key(T.c.id, uuid.UUID),
    ),
)
VALUES = (date(2026, 11, 29), datetime(2026, 11, 29, 1, 2, 3, 456, UTC), 7, "甲", uuid.uuid4())


def test_a_cursor_carries_the_values_of_the_last_row() -> None:
    cursor = paging.encode(ORDER, VALUES)
    assert paging.decode(ORDER, cursor) == VALUES
    assert paging.request(ORDER, cursor, "20").after == VALUES
    assert paging.decode(ORDER, paging.encode(ORDER, (None, *VALUES[1:])))[0] is None


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c[:-1] + ("0" if c[-1] != "0" else "1"),  # the checksum
        lambda c: ("B" if c[0] != "B" else "C") + c[1:],  # the values
        lambda c: c.split(".")[0],  # no checksum
        lambda c: "!!!." + c.split(".")[1],  # not base64
        lambda c: c + "x" * 400,  # too long
    ],
)
def test_a_tampered_cursor_is_a_422_naming_it(tamper) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed) as e:
        paging.decode(ORDER, tamper(paging.encode(ORDER, VALUES)))
    assert e.value.status == 422 and e.value.errors[0]["field"] == "cursor"


def test_a_cursor_of_another_list_or_with_wrong_types_is_refused() -> None:
    other = paging.Order("test.other", ORDER.keys)
    with pytest.raises(ValidationFailed):
        paging.decode(other, paging.encode(ORDER, VALUES))
    # Well signed (the checksum is not a secret) but of the wrong shape or types.
    for bad in ([1, 2], ["x", "y", 1, "s", "u"], [None, None, 1, "s", str(uuid.uuid4())]):
        forged = paging.encode(ORDER, bad)
        with pytest.raises(ValidationFailed):
            paging.decode(ORDER, forged)
    naive = paging.encode(ORDER, (VALUES[0], "2026-11-29T01:02:03", 7, "s", str(VALUES[4])))
    with pytest.raises(ValidationFailed):
        paging.decode(ORDER, naive)


@pytest.mark.parametrize("size", ["0", "-1", "201", "abc", "1.5"])
def test_a_page_size_out_of_range_is_a_422_naming_it(size: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        paging.page_size(size)
    assert e.value.errors[0]["field"] == "page_size"


def test_page_size_default_and_bounds() -> None:
    assert paging.page_size(None) == paging.DEFAULT_SIZE
    assert paging.page_size("1") == 1 and paging.page_size("200") == 200


def test_day_range() -> None:
    assert paging.day_range("2026-11-01", "2026-11-29") == (date(2026, 11, 1), date(2026, 11, 29))
    with pytest.raises(ValidationFailed) as e:
        paging.day_range("2026-11-29", "2026-11-01")
    assert e.value.errors[0]["field"] == "until"
    with pytest.raises(ValidationFailed) as e:
        paging.day_range("29/11/2026", None)
    assert e.value.errors[0]["field"] == "since"


def test_query_string_keeps_filters_and_drops_empty_ones() -> None:
    q = paging.query_string({"state": "overdue", "q": "", "city": None}, cursor="abc")
    assert q == "state=overdue&cursor=abc"
