"""An audit entry's subject ("<prefix>:<uuid>") as the id of the record it names, in SQL,
for readers that join chain entries to records (the dashboard's refresh, the clearing
tally's fold): one expression on both dialects instead of one per reader."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import ColumnElement, Uuid, and_, case, func
from sqlalchemy import cast as sa_cast


def record_id(pg: bool, subject: Any, prefix: str, *, checked: bool = True) -> ColumnElement[Any]:
    """The id of the record `subject` names, as record tables store it: on PostgreSQL a
    uuid, NULL unless the subject has the form (a guarded cast); on SQLite 32 hex digits.

    `checked` guards with a regular expression, for entries of any origin. Without it
    the guard is the subject's length and prefix (a regular expression per entry was
    ~45 µs, most of the clearing tally's fold): only for kinds whose entries the record's
    own mapper writes, since a malformed subject of the right length would fail the
    whole statement's cast."""
    raw = func.substr(subject, len(prefix) + 2)
    if not pg:
        return cast(ColumnElement[Any], func.replace(raw, "-", ""))
    if checked:
        ok: ColumnElement[bool] = subject.op("~")(f"^{prefix}:[0-9a-fA-F-]{{36}}$")
    else:
        ok = and_(
            func.length(subject) == len(prefix) + 37,
            func.left(subject, len(prefix) + 1) == f"{prefix}:",
        )
    return case((ok, sa_cast(raw, Uuid)), else_=None)
