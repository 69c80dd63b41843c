"""medical: a reference unit price (参考单价, fen) per catalogue item, proposed by the
hospital counter when the clerk leaves a row's price empty. Existing items get the
file's price at the next reference load (``tongban medical load`` / node start).

Revision ID: 0048
Revises: 0047
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0048"
down_revision: str | None = "0047"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("med_catalogue_item") as batch:
        batch.add_column(sa.Column("price_fen", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("med_catalogue_item") as batch:
        batch.drop_column("price_fen")
