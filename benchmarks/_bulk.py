"""Bulk loads for the benchmarks: a PostgreSQL table without its secondary indexes and
constraints while millions of generated rows go in, rebuilt once afterwards (one pass
over the table each, instead of an index update and a constraint check per row)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import text


@contextmanager
def unindexed(
    execute: Callable[..., Any], table: str, *, foreign_keys: bool = True
) -> Iterator[None]:
    """Drop `table`'s unique and foreign-key constraints and its secondary indexes (its
    primary key stays); on leaving, rebuild the indexes and the unique constraints, and
    the foreign keys unless `foreign_keys` is False (rows that stand for missing ones).
    `execute` is a Session's or a Connection's."""
    constraints = execute(
        text(
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = CAST(:t AS regclass) AND contype IN ('u', 'f')"
        ),
        {"t": table},
    ).all()
    for name, _, _ in constraints:
        execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
    indexes = execute(
        text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t "
            "AND indexname NOT LIKE 'pk_%'"
        ),
        {"t": table},
    ).all()
    for name, _ in indexes:
        execute(text(f'DROP INDEX "{name}"'))
    yield
    for _, ddl in indexes:
        execute(text(ddl))
    for name, kind, definition in constraints:
        if kind == "u" or foreign_keys:
            execute(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))
