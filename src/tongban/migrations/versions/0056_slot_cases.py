"""slot 0056 (reserved for a change in session 9; replaced or removed before the end)

Revision ID: 0056
Revises: 0055
"""

from collections.abc import Sequence

revision: str = "0056"
down_revision: str | None = "0055"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
