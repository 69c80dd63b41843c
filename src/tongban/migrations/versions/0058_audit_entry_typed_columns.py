"""audit: typed columns on the chain's entries (action, to_state, occurred_at, subject_id)

What readers in SQL take from an entry's JSON body and subject, as columns written with
the entry (`audit.domain.typed_fields`): the body's `action` and `to_state` (strings of
at most 40 characters), its `at` (an ISO-8601 instant), and the uuid the subject
"<type>:<uuid>" names. They are derived from what the entry's hash covers, and neither
hashed nor verified: the chain's format, hashes and verification are unchanged. The
dashboard's refresh reads them instead of parsing every body (docs/dashboard.md,
"Session 15").

The entries chained before this migration are filled here, in batches of `BATCH` by
seq, with a frozen copy of the derivation (`_typed`; the same rules as
`audit.domain.typed_fields` at this revision): a row whose four values are all NULL is
not written. The downgrade drops the columns.

Revision ID: 0058
Revises: 0057
"""

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0058"
down_revision: str | None = "0057"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Entries read and written a statement.
BATCH = 20_000
_TEXT_MAX = 40
_HEX = frozenset("0123456789abcdefABCDEF")
_COLUMNS = ("action", "to_state", "occurred_at", "subject_id")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and len(value) <= _TEXT_MAX else None


def _at(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
        return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # no instant, or one outside datetime's range in UTC
        return None


def _uuid(subject: str) -> uuid.UUID | None:
    _, sep, raw = subject.partition(":")
    if not sep or len(raw) != 36 or raw.count("-") != 4:
        return None
    if any(raw[i] != "-" for i in (8, 13, 18, 23)):
        return None
    if not _HEX.issuperset(raw.replace("-", "")):
        return None
    return uuid.UUID(raw)


def _typed(subject: str, body: str) -> dict[str, Any]:
    try:
        fields = json.loads(body)
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        fields = {}
    return {
        "action": _text(fields.get("action")),
        "to_state": _text(fields.get("to_state")),
        "occurred_at": _at(fields.get("at")),
        "subject_id": _uuid(subject),
    }


_PG_FILL = sa.text(
    "UPDATE audit_entry AS a SET action = v.action, to_state = v.to_state,"
    " occurred_at = v.occurred_at, subject_id = v.subject_id"
    " FROM unnest(CAST(:seqs AS bigint[]), CAST(:actions AS text[]),"
    " CAST(:to_states AS text[]), CAST(:occurreds AS timestamptz[]),"
    " CAST(:subject_ids AS uuid[])) AS v(seq, action, to_state, occurred_at, subject_id)"
    " WHERE a.seq = v.seq"
)


def upgrade() -> None:
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("action", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("to_state", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("subject_id", sa.Uuid(), nullable=True))
    bind = op.get_bind()
    pg = bind.dialect.name == "postgresql"
    t = sa.table(
        "audit_entry",
        sa.column("seq", sa.BigInteger),
        sa.column("subject", sa.String),
        sa.column("body", sa.Text),
        sa.column("action", sa.String),
        sa.column("to_state", sa.String),
        sa.column("occurred_at", sa.DateTime(timezone=True)),
        sa.column("subject_id", sa.Uuid),
    )
    fill = (
        sa.update(t)
        .where(t.c.seq == sa.bindparam("b_seq"))
        .values({c: sa.bindparam(f"b_{c}") for c in _COLUMNS})
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(t.c.seq, t.c.subject, t.c.body)
            .where(t.c.seq > last)
            .order_by(t.c.seq)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        last = int(rows[-1].seq)
        typed = [(int(r.seq), _typed(r.subject, r.body)) for r in rows]
        typed = [(seq, v) for seq, v in typed if any(x is not None for x in v.values())]
        if not typed:
            continue
        if pg:
            bind.execute(
                _PG_FILL,
                {
                    "seqs": [seq for seq, _ in typed],
                    "actions": [v["action"] for _, v in typed],
                    "to_states": [v["to_state"] for _, v in typed],
                    "occurreds": [v["occurred_at"] for _, v in typed],
                    "subject_ids": [v["subject_id"] for _, v in typed],
                },
            )
        else:
            bind.execute(
                fill,
                [{"b_seq": seq, **{f"b_{c}": v[c] for c in _COLUMNS}} for seq, v in typed],
            )


def downgrade() -> None:
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
