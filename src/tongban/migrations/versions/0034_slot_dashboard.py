"""dashboard: aggregate cells, source watermarks and the refresh log (issue 18)

- dash_cell: one aggregate per (origin, indicator, day, from city, to city,
  jurisdiction, category, authority, matter): counts, sums and a handling-time histogram;
  origin "" is this node's own, a jurisdiction code a copy another node published;
- dash_watermark: how far each event source has been folded in;
- dash_refresh: each refresh with the audit chain position and checkpoint it read up to.

Revision ID: 0034
Revises: 0033
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dash_cell",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("origin", sa.String(length=6), nullable=False),
        sa.Column("indicator", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("from_city", sa.String(length=6), nullable=False),
        sa.Column("to_city", sa.String(length=6), nullable=False),
        sa.Column("jurisdiction", sa.String(length=6), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("authority", sa.String(length=80), nullable=False),
        sa.Column("matter", sa.String(length=120), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("extra", sa.BigInteger(), nullable=False),
        sa.Column("hist", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dash_cell")),
    )
    op.create_index(
        "uq_dash_cell_key",
        "dash_cell",
        [
            "origin",
            "indicator",
            "day",
            "from_city",
            "to_city",
            "jurisdiction",
            "category",
            "authority",
            "matter",
        ],
        unique=True,
    )
    op.create_index("ix_dash_cell_indicator_day", "dash_cell", ["indicator", "day"], unique=False)
    op.create_table(
        "dash_watermark",
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("mark_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("mark_id", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_dash_watermark")),
    )
    op.create_table(
        "dash_refresh",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), nullable=False),
        sa.Column("audit_hash", sa.String(length=64), nullable=False),
        sa.Column("checkpoint_seq", sa.BigInteger(), nullable=True),
        sa.Column("checkpoint_hash", sa.String(length=64), nullable=True),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dash_refresh")),
    )
    op.create_index(op.f("ix_dash_refresh_at"), "dash_refresh", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_dash_refresh_at"), table_name="dash_refresh")
    op.drop_table("dash_refresh")
    op.drop_table("dash_watermark")
    op.drop_index("ix_dash_cell_indicator_day", table_name="dash_cell")
    op.drop_index("uq_dash_cell_key", table_name="dash_cell")
    op.drop_table("dash_cell")
