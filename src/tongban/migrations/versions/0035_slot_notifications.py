"""Slot reserved for issue 13 (notifications): empty until that work fills it (so the schema keeps
one head while several changes are made in parallel).

Revision ID: 0035
Revises: 0034
"""

from collections.abc import Sequence

revision: str = "0035"
down_revision: str | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
