"""Slot reserved for list indexes: empty until that work fills it (so the schema keeps
one head while several changes are made in parallel).

Revision ID: 0041
Revises: 0040
"""

from collections.abc import Sequence

revision: str = "0041"
down_revision: str | None = "0040"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
