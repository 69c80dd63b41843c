"""slot 0053 (empty; reserved for a helper's change)

Revision ID: 0053
Revises: 0052
"""

from collections.abc import Sequence

revision: str = "0053"
down_revision: str | None = "0052"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
