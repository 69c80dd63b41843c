"""Slot reserved for medical clearing: empty until that work fills it (so the schema keeps
one head while several changes are made in parallel).

Revision ID: 0042
Revises: 0041
"""

from collections.abc import Sequence

revision: str = "0042"
down_revision: str | None = "0041"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
