"""Evidence consent withdrawal and verify short links.

- `evidence_consent.withdrawals`: the kinds the applicant withdrew consent for, each with
  when and by whom (the history of the withdrawal; not retroactive);
- `licence_short_link`: short links `/v/<token>` to a presentation, so that the QR code
  a holder shows is small (random token, expiry, bounded presentation).

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
    op.create_table(
        "licence_short_link",
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("presentation", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_licence_short_link")),
    )
    op.create_index(op.f("ix_licence_short_link_created_by"), "licence_short_link", ["created_by"])


def downgrade() -> None:
    op.drop_index(op.f("ix_licence_short_link_created_by"), table_name="licence_short_link")
    op.drop_table("licence_short_link")
    with op.batch_alter_table("evidence_consent") as batch:
        batch.drop_column("withdrawals")
