"""ticket replicas: a co-handling node's copy of a joint work order led elsewhere

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        batch.add_column(
            sa.Column("replica", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(sa.Column("lead_due_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        batch.drop_column("lead_due_at")
        batch.drop_column("replica")
