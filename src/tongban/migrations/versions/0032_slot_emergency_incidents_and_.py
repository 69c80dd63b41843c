"""Slot reserved for issue 19 (emergency incidents and hand-overs): empty until that work fills it (so the schema keeps
one head while several changes are made in parallel).

Revision ID: 0032
Revises: 0031
"""

from collections.abc import Sequence

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
