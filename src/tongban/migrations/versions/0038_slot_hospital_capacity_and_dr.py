"""Slot reserved for issue 19 (hospital capacity and drills): empty until that work fills it (so the schema keeps
one head while several changes are made in parallel).

Revision ID: 0038
Revises: 0037
"""

from collections.abc import Sequence

revision: str = "0038"
down_revision: str | None = "0037"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
