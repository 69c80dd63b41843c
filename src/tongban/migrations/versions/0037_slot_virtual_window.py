"""Slot reserved for issue 16 (virtual window): empty until that work fills it (so the schema keeps
one head while several changes are made in parallel).

Revision ID: 0037
Revises: 0036
"""

from collections.abc import Sequence

revision: str = "0037"
down_revision: str | None = "0036"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
