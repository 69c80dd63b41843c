"""merge the context branches

The contexts of the second round (licences, exchange, evidence, audit, medical,
tickets) were built side by side, each with its own revision on top of 0002; this
revision joins them so that the schema has one head again.

Revision ID: 0009
Revises: 0003, 0004, 0005, 0006, 0007, 0008
Create Date: 2026-11-23 08:48:16.260868
"""

from collections.abc import Sequence

revision: str = "0009"
down_revision: str | tuple[str, ...] | None = ("0003", "0004", "0005", "0006", "0007", "0008")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
