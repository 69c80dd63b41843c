"""Slot reserved for issue 18 (dashboard): empty until that work fills it (so the schema keeps
one head while several changes are made in parallel).

Revision ID: 0034
Revises: 0033
"""

from collections.abc import Sequence

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
