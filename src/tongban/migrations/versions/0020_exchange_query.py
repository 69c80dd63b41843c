"""exchange: synchronous queries between nodes, recorded on both sides (issue 12)

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "exchange_query",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=60), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("asking_node", sa.String(length=40), nullable=True),
        sa.Column("asking_jurisdiction", sa.String(length=6), nullable=False),
        sa.Column("answering_node", sa.String(length=40), nullable=True),
        sa.Column("answering_jurisdiction", sa.String(length=6), nullable=False),
        sa.Column("subject_digest", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=80), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_query")),
    )
    with op.batch_alter_table("exchange_query", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_exchange_query_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_exchange_query_subject_digest"), ["subject_digest"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("exchange_query", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exchange_query_subject_digest"))
        batch_op.drop_index(batch_op.f("ix_exchange_query_at"))
    op.drop_table("exchange_query")
