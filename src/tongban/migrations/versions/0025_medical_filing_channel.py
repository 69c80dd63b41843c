"""medical: filings made at another node's counter (issue 12)

med_filing gets how a filing was made (`channel`: `self`, the resident online on their
own node; `counter`, at a treatment institution's counter of any node, with the
patient's consent, through the insured node's `medical.file` query), who made it there
(`filed_by`: the institution and its operator) and when the patient consented
(`consent_at`). Existing filings were made by residents or by the demo: `self`.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-02 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("med_filing") as batch:
        batch.add_column(
            sa.Column("channel", sa.String(length=10), server_default="self", nullable=False)
        )
        batch.add_column(sa.Column("filed_by", sa.String(length=120), nullable=True))
        batch.add_column(sa.Column("consent_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("med_filing") as batch:
        batch.drop_column("consent_at")
        batch.drop_column("filed_by")
        batch.drop_column("channel")
