"""slot 0055 (reserved for a change in session 9; replaced or removed before the end)

Revision ID: 0055
Revises: 0054
"""

from collections.abc import Sequence

revision: str = "0055"
down_revision: str | None = "0054"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
