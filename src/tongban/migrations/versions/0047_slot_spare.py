"""Slot reserved for spare: empty until that work fills it (so the schema keeps
one head while several changes are made in parallel).

Revision ID: 0047
Revises: 0046
"""

from collections.abc import Sequence

revision: str = "0047"
down_revision: str | None = "0046"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
