"""Slot reserved for cases review flow: empty until that work fills it (so the schema keeps
one head while several changes are made in parallel).

Revision ID: 0045
Revises: 0044
"""

from collections.abc import Sequence

revision: str = "0045"
down_revision: str | None = "0044"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
