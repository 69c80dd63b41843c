"""Slot reserved for issue 12 (medical across nodes): empty until that work fills it (so the schema keeps
one head while several changes are made in parallel).

Revision ID: 0030
Revises: 0029
"""

from collections.abc import Sequence

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
