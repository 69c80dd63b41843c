"""Dashboard: when a node last asked a publisher for a full snapshot of a jurisdiction's
cells, and when it last answered a node's request for one (each at most once in an
interval). Until now these times were kept in rows of the numbering counters.

Revision ID: 0054
Revises: 0052
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0054"
down_revision: str | None = "0052"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dash_stamp",
        sa.Column("scope", sa.String(120), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dash_stamp")
