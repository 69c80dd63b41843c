"""For readers of chain entries in SQL (the dashboard's refresh, the clearing tally's
fold): an entry's subject ("<prefix>:<uuid>") as the id of the record it names, and the
top-level fields of its JSON body — one expression each on both dialects instead of one
per reader."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from sqlalchemy import ColumnElement, Uuid, and_, case, column, func, true
from sqlalchemy import cast as sa_cast
from sqlalchemy.dialects.postgresql import JSON


def record_id(pg: bool, subject: Any, prefix: str, *, checked: bool = True) -> ColumnElement[Any]:
    """The id of the record `subject` names, as record tables store it: on PostgreSQL a
    uuid, NULL unless the subject has the form (a guarded cast); on SQLite 32 hex digits.

    `checked` admits only the canonical form (8-4-4-4-12 hex digits, any case), every
    string of which the uuid cast accepts, so no entry of any origin can fail the
    statement: plain string functions and one negated character class (the bounded
    regular expression `[0-9a-fA-F-]{36}` it replaced let 36 hyphens through to a
    failing cast, and cost 2.2–2.8 s of backend CPU per million entries: docs/dashboard.md,
    "Session 12: reading the chain"). Without `checked` the guard is the subject's length
    and prefix: only for kinds whose entries the record's own mapper writes, since a
    malformed subject of the right length would fail the whole statement's cast."""
    raw = func.substr(subject, len(prefix) + 2)
    if not pg:
        return cast(ColumnElement[Any], func.replace(raw, "-", ""))
    if checked:
        canonical = f"{prefix}:________-____-____-____-____________"
        ok: ColumnElement[bool] = and_(
            func.length(subject) == len(canonical),
            subject.like(canonical),
            func.length(func.replace(subject, "-", "")) == len(canonical) - 4,
            raw.op("!~")("[^-0-9a-fA-F]"),
        )
    else:
        ok = and_(
            func.length(subject) == len(prefix) + 37,
            func.left(subject, len(prefix) + 1) == f"{prefix}:",
        )
    return case((ok, sa_cast(raw, Uuid)), else_=None)


def body_fields(
    pg: bool, entries: Any, fields: Mapping[str, Any], name: str = "b"
) -> tuple[Any, Callable[[str], ColumnElement[Any]]]:
    """`entries` (the chain, or the staged entries) with the top-level `fields` of their
    JSON body (name → SQL type): (from clause, field by name). PostgreSQL parses each
    body once (json_to_record in the FROM list, typed), where a `->>` per reference would
    parse it once per reference; SQLite extracts each field (json_extract)."""
    if pg:
        r = (
            func.json_to_record(sa_cast(entries.c.body, JSON))
            .table_valued(*(column(f, kind) for f, kind in fields.items()))
            .render_derived(name=name, with_types=True)
        )
        return entries.join(r, true()), lambda f: cast(ColumnElement[Any], r.c[f])
    return entries, lambda f: cast(ColumnElement[Any], func.json_extract(entries.c.body, f"$.{f}"))
