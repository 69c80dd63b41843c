"""Slot reserved for numbering and write path: empty until that work fills it (so the schema keeps
one head while several changes are made in parallel).

Revision ID: 0040
Revises: 0039
"""

from collections.abc import Sequence

revision: str = "0040"
down_revision: str | None = "0039"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
