"""slot 0054 (empty; reserved for a helper's change)

Revision ID: 0054
Revises: 0053
"""

from collections.abc import Sequence

revision: str = "0054"
down_revision: str | None = "0053"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
