"""Medical clearing tally: per period and city pair, the partial sums of the treatment
side's claims (counts and fen), folded incrementally from the audit chain, and the one
watermark row saying up to which chain position they are folded (issue 14: the clearing
command no longer rescans the month's settlements). The tally starts empty with no
watermark row: the first fold builds it from the settlements themselves.

Revision ID: 0051
Revises: 0050
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0051"
down_revision: str | None = "0050"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "med_clearing_tally",
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("insured_j", sa.String(6), primary_key=True),
        sa.Column("treatment_j", sa.String(6), primary_key=True),
        sa.Column("insured_city", sa.String(6), primary_key=True),
        sa.Column("treatment_city", sa.String(6), primary_key=True),
        sa.Column("claims", sa.BigInteger(), nullable=False),
        sa.Column("reversals", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "med_clearing_tally_mark",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("folded_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("med_clearing_tally_mark")
    op.drop_table("med_clearing_tally")
