"""dashboard: histograms as rows, monthly roll-ups, a staging table for set-based folds

- dash_hist (cell_id, bucket, n): a cell's handling-time histogram, one row per whole
  working day, replacing dash_cell.hist (JSON), so that SQL adds the buckets;
- dash_month / dash_month_hist: the monthly roll-ups of the cells (`month` the month's
  first day) at several levels (`level`: which key dimensions are kept), kept by the
  fold that writes the cells;
- dash_stage: facts grouped by key and bucket on their way into the cells (emptied in
  the transaction that fills it);
- dash_workday: working-day ordinals per day (the calendar's predicate), joined to
  count working days in SQL.

The cells are derived data: this migration empties them and the watermarks, and the
next refresh folds every event again (other nodes' copies come back with their next
publication). The downgrade likewise leaves the cells to be recomputed.

Revision ID: 0043
Revises: 0042
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0043"
down_revision: str | None = "0042"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_KEY = ("from_city", "to_city", "jurisdiction", "category", "authority", "matter")


def _key_columns() -> list[sa.Column[str]]:
    return [
        sa.Column("from_city", sa.String(length=6), nullable=False),
        sa.Column("to_city", sa.String(length=6), nullable=False),
        sa.Column("jurisdiction", sa.String(length=6), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("authority", sa.String(length=80), nullable=False),
        sa.Column("matter", sa.String(length=120), nullable=False),
    ]


def _hist(name: str, owner: str) -> None:
    op.create_table(
        name,
        sa.Column(owner, sa.BigInteger(), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(owner, "bucket", name=op.f(f"pk_{name}")),
    )


def upgrade() -> None:
    op.execute("DELETE FROM dash_cell")
    op.execute("DELETE FROM dash_watermark")
    with op.batch_alter_table("dash_cell") as batch:
        batch.drop_column("hist")
    _hist("dash_hist", "cell_id")
    op.create_table(
        "dash_month",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("origin", sa.String(length=6), nullable=False),
        sa.Column("level", sa.String(length=1), nullable=False),
        sa.Column("indicator", sa.String(length=40), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        *_key_columns(),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("extra", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dash_month")),
    )
    op.create_index(
        "uq_dash_month_key",
        "dash_month",
        ["origin", "level", "indicator", "month", *_KEY],
        unique=True,
    )
    op.create_index(
        "ix_dash_month_level_indicator_month", "dash_month", ["level", "indicator", "month"]
    )
    _hist("dash_month_hist", "month_id")
    op.create_table(
        "dash_stage",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("indicator", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *_key_columns(),
        sa.Column("bucket", sa.Integer(), nullable=True),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("extra", sa.BigInteger(), nullable=False),
        sa.Column("hn", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dash_stage")),
    )
    op.create_table(
        "dash_workday",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_dash_workday")),
    )


def downgrade() -> None:
    op.drop_table("dash_workday")
    op.drop_table("dash_stage")
    op.drop_table("dash_month_hist")
    op.drop_index("ix_dash_month_level_indicator_month", table_name="dash_month")
    op.drop_index("uq_dash_month_key", table_name="dash_month")
    op.drop_table("dash_month")
    op.drop_table("dash_hist")
    op.execute("DELETE FROM dash_cell")
    op.execute("DELETE FROM dash_watermark")
    with op.batch_alter_table("dash_cell") as batch:
        batch.add_column(sa.Column("hist", sa.JSON(), nullable=True))
