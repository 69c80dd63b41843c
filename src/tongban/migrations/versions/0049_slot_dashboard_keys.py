"""Reserved slot (dashboard_keys): no schema change yet.

Revision ID: 0049
Revises: 0048
"""

from collections.abc import Sequence

revision: str = "0049"
down_revision: str | None = "0048"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
