"""Slot reserved for emergency aggregates: empty until that work fills it (so the schema keeps
one head while several changes are made in parallel).

Revision ID: 0044
Revises: 0043
"""

from collections.abc import Sequence

revision: str = "0044"
down_revision: str | None = "0043"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
