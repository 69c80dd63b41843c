"""Slot reserved for dashboard rollups: empty until that work fills it (so the schema keeps
one head while several changes are made in parallel).

Revision ID: 0043
Revises: 0042
"""

from collections.abc import Sequence

revision: str = "0043"
down_revision: str | None = "0042"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
