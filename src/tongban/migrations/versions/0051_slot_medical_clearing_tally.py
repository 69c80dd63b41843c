"""Reserved slot (medical_clearing_tally): no schema change yet.

Revision ID: 0051
Revises: 0050
"""

from collections.abc import Sequence

revision: str = "0051"
down_revision: str | None = "0050"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
