"""card: venue staff and the holder's city of a use (issue 15)

- card_venue_staff: which venue an account of the venue staff role scans codes for
  (granted by the node's administrator);
- card_use.card_city: the holder's city the credential named, so that the operators'
  figures go per city pair (holder's city -> venue's city); null for uses recorded
  before it, or uploaded by gates that do not send it.

Revision ID: 0031
Revises: 0030
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "card_venue_staff",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("venue_code", sa.String(length=60), nullable=False),
        sa.Column("granted_by", sa.Uuid(), nullable=True),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_card_venue_staff_account_id_account")
        ),
        sa.ForeignKeyConstraint(
            ["granted_by"], ["account.id"], name=op.f("fk_card_venue_staff_granted_by_account")
        ),
        sa.PrimaryKeyConstraint("account_id", "venue_code", name=op.f("pk_card_venue_staff")),
    )
    with op.batch_alter_table("card_use") as batch:
        batch.add_column(sa.Column("card_city", sa.String(length=6), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("card_use") as batch:
        batch.drop_column("card_city")
    op.drop_table("card_venue_staff")
