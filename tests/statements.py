"""Counting the SQL statements a piece of work sends (for "a page of N rows costs a
constant number of statements")."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event


@contextmanager
def counted(engine: Any) -> Iterator[list[str]]:
    """The statements sent on `engine` inside the block, first line of each."""
    seen: list[str] = []

    def count(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement.split("\n")[0][:120])

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)
