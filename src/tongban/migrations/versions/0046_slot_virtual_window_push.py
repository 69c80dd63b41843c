"""Slot reserved for virtual window push: empty until that work fills it (so the schema keeps
one head while several changes are made in parallel).

Revision ID: 0046
Revises: 0045
"""

from collections.abc import Sequence

revision: str = "0046"
down_revision: str | None = "0045"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
