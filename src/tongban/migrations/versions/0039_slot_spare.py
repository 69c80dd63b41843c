"""card: the revocation lists of other nodes' jurisdictions this node received in the
last day (card_revocations_received_version), so that it can send its gates a delta
onto the list a gate holds instead of the whole newest list.

Revision ID: 0039
Revises: 0038
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0039"
down_revision: str | None = "0038"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "card_revocations_received_version",
        sa.Column("jurisdiction_code", sa.String(length=6), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("iat", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["jurisdiction_code"],
            ["jurisdiction.code"],
            name=op.f("fk_card_revocations_received_version_jurisdiction_code_jurisdiction"),
        ),
        sa.PrimaryKeyConstraint(
            "jurisdiction_code", "seq", "iat", name=op.f("pk_card_revocations_received_version")
        ),
    )


def downgrade() -> None:
    op.drop_table("card_revocations_received_version")
