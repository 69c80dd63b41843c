"""Slot reserved for issue 13 (corrections and result documents): empty until that work fills it (so the schema keeps
one head while several changes are made in parallel).

Revision ID: 0036
Revises: 0035
"""

from collections.abc import Sequence

revision: str = "0036"
down_revision: str | None = "0035"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
