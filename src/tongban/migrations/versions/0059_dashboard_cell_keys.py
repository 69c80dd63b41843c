"""dashboard: cell keys for the noise of published counts

Every event the dashboard counts gets a key computed under a secret of the node
(`dashboard.cellkey`); a cell's key `ckey` is the sum of its events' keys, added like its
count, and every published count is perturbed by a small amount chosen by (count, key):
the same events get the same noise in every table, so subtracting published figures
recovers noise, not a small cell (docs/dashboard.md, "Small cells").

Adds `ckey` (0 by default) to the cells, the roll-ups and the stages, and the table of
the secret. The cells this node made itself (origin "") hold no keys yet: they are
deleted with their histograms, roll-ups and the refresh's watermarks, so that the next
refresh folds every event again with its key (cells are derived data; `recompute`
does the same). Peers' copies are replaced by the full snapshot each publisher sends
after its restart (`federation`). The downgrade drops the columns and the table.

Revision ID: 0059
Revises: 0058
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0059"
down_revision: str | None = "0058"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("dash_cell", "dash_month", "dash_stage", "dash_stage_month")


def upgrade() -> None:
    for name in _TABLES:
        with op.batch_alter_table(name) as batch_op:
            batch_op.add_column(
                sa.Column("ckey", sa.BigInteger(), nullable=False, server_default="0")
            )
    op.create_table(
        "dash_secret",
        sa.Column("name", sa.String(length=40), primary_key=True),
        sa.Column("value", sa.String(length=128), nullable=False),
    )
    op.execute(
        "DELETE FROM dash_hist WHERE cell_id IN (SELECT id FROM dash_cell WHERE origin = '')"
    )
    op.execute("DELETE FROM dash_cell WHERE origin = ''")
    op.execute(
        "DELETE FROM dash_month_hist WHERE month_id IN "
        "(SELECT id FROM dash_month WHERE origin = '')"
    )
    op.execute("DELETE FROM dash_month WHERE origin = ''")
    op.execute("DELETE FROM dash_watermark")


def downgrade() -> None:
    op.drop_table("dash_secret")
    for name in _TABLES:
        with op.batch_alter_table(name) as batch_op:
            batch_op.drop_column("ckey")
