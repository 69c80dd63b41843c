"""Reserved slot (dashboard_refresh): no schema change yet.

Revision ID: 0050
Revises: 0049
"""

from collections.abc import Sequence

revision: str = "0050"
down_revision: str | None = "0049"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
