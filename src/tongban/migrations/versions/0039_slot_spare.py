"""Slot reserved for spare: empty until that work fills it (so the schema keeps
one head while several changes are made in parallel).

Revision ID: 0039
Revises: 0038
"""

from collections.abc import Sequence

revision: str = "0039"
down_revision: str | None = "0038"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
