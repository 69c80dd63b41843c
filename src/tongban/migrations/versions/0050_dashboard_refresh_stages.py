"""dashboard refresh: entries read once, the stage folded by month once, unlogged stages

- dash_entry (seq, kind, rid, action, to_state, day): a batch of audit chain entries
  with the fields the refresh needs taken out of the JSON body once; the facts are
  grouped from it (one statement per kind of record) instead of parsing every body in
  each of them;
- dash_stage_month: the stage folded by month once per roll-up level (the finest from
  the stage, each coarser level from a finer one), added to dash_month by one upsert;
- on PostgreSQL these two and dash_stage are UNLOGGED: they hold derived rows only
  within the refresh's transaction (emptied before it commits), so writing them to the
  WAL buys nothing — after a crash they are empty, as they are after every refresh.

Nothing is emptied: the cells stay valid.

Revision ID: 0050
Revises: 0049
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0050"
down_revision: str | None = "0049"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _pg() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    unlogged = ["UNLOGGED"] if _pg() else []
    op.create_table(
        "dash_entry",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("rid", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(), nullable=True),
        sa.Column("to_state", sa.String(), nullable=True),
        sa.Column("day", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_dash_entry")),
        prefixes=unlogged,
    )
    op.create_table(
        "dash_stage_month",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("level", sa.String(length=1), nullable=False),
        sa.Column("indicator", sa.String(length=40), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("from_city", sa.String(length=6), nullable=False),
        sa.Column("to_city", sa.String(length=6), nullable=False),
        sa.Column("jurisdiction", sa.String(length=6), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("authority", sa.String(length=80), nullable=False),
        sa.Column("matter", sa.String(length=120), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=True),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("extra", sa.BigInteger(), nullable=False),
        sa.Column("hn", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dash_stage_month")),
        prefixes=unlogged,
    )
    if _pg():
        op.execute("ALTER TABLE dash_stage SET UNLOGGED")


def downgrade() -> None:
    if _pg():
        op.execute("ALTER TABLE dash_stage SET LOGGED")
    op.drop_table("dash_stage_month")
    op.drop_table("dash_entry")
