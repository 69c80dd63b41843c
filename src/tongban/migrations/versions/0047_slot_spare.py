"""Evidence consent withdrawal: `evidence_consent.withdrawals`, the kinds the applicant
withdrew consent for, each with when and by whom (the history of the withdrawal; a
withdrawal is not retroactive, answered requests stay in the log).

Revision ID: 0047
Revises: 0046
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0047"
down_revision: str | None = "0046"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("evidence_consent") as batch:
        batch.add_column(sa.Column("withdrawals", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("evidence_consent") as batch:
        batch.drop_column("withdrawals")
