"""The cursor of kernel.paging: round trip, tampering, sizes, date ranges."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    create_engine,
    select,
)
from sqlalchemy.orm import Session

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


# --- the page's SELECT, built once per shape -------------------------------------------

ROWS = Table(
    "rows",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("due", Date, nullable=True),
    Column("city", String),
    Column("kind", String),
)
BY_DUE = paging.Order(
    "test.by-due", (paging.Key(ROWS.c.due, date, nullable=True), paging.Key(ROWS.c.id, int))
)


def _walk(session: Any, branches: Any, size: int) -> list[int]:
    """Every id of the list, page by page."""
    seen: list[int] = []
    req = paging.PageRequest(size=size)
    while True:
        page = paging.fetch(session, branches, BY_DUE, req)
        seen += [r.id for r in page.rows]
        if page.next_cursor is None:
            return seen
        req = paging.request(BY_DUE, page.next_cursor, size)


def test_a_page_statement_is_built_once_per_shape_and_takes_each_requests_values() -> None:
    engine = create_engine("sqlite://")
    ROWS.metadata.create_all(engine)
    data = [
        {"id": i, "due": None if i % 4 == 0 else date(2026, 11, 1 + i % 7),
         "city": ("320500", "310000")[i % 2], "kind": ("a", "b", "c")[i % 3]}
        for i in range(1, 41)
    ]  # fmt: skip
    with Session(engine) as s:
        s.execute(ROWS.insert(), data)

        def expected(city: str, kinds: list[str]) -> list[int]:
            rows = [r for r in data if r["city"] == city or r["kind"] in kinds]
            rows.sort(key=lambda r: (r["due"] is None, r["due"] or date.min, r["id"]))
            return [r["id"] for r in rows]

        def branches(city: str, kinds: list[str]) -> list[Any]:
            cols = select(ROWS.c.id, ROWS.c.due)
            return [
                cols.where(ROWS.c.city == city),
                cols.where(ROWS.c.city != city, ROWS.c.kind.in_(kinds)),
            ]

        paging._TEMPLATES.clear()
        # One shape, different values (the filters, the IN list, the cursors, the size):
        # every walk returns its own rows, in order, and no more statements are built
        # than the shape has (first page; cursor on a date; cursor on NULL).
        for city, kinds, size in [("320500", ["a"], 3), ("310000", ["b", "c"], 5),
                                  ("320500", ["c", "a", "b"], 7)]:  # fmt: skip
            assert _walk(s, branches(city, kinds), size) == expected(city, kinds)
        assert len(paging._TEMPLATES) == 3
        single = select(ROWS.c.id, ROWS.c.due).where(ROWS.c.kind == "b")
        assert _walk(s, single, 4) == [
            i for i in expected("none", ["b"]) if data[i - 1]["kind"] == "b"
        ]
        assert len(paging._TEMPLATES) == 6
