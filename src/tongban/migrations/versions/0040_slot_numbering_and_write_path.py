"""Audit entries counted by kind (issue 14): `audit_kind_count` holds the counts up to
`audit_head.counted_seq`, so the audit page adds only the entries after it instead of
counting the whole chain on every view. Filled here from the chain as it is. And the
index on service_case (authority, state, handoff) the workbench's bounded queue counts
read.

Revision ID: 0040
Revises: 0039
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0040"
down_revision: str | None = "0039"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_head") as batch:
        batch.add_column(
            sa.Column("counted_seq", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.create_table(
        "audit_kind_count",
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_audit_kind_count")),
    )
    op.execute(
        "INSERT INTO audit_kind_count (kind, n) "
        "SELECT kind, count(*) FROM audit_entry "
        "WHERE seq <= (SELECT seq FROM audit_head WHERE id = 1) GROUP BY kind"
    )
    op.execute("UPDATE audit_head SET counted_seq = seq WHERE id = 1")
    op.create_index("ix_case_authority_state", "service_case", ["authority_id", "state", "handoff"])


def downgrade() -> None:
    op.drop_index("ix_case_authority_state", table_name="service_case")
    op.drop_table("audit_kind_count")
    with op.batch_alter_table("audit_head") as batch:
        batch.drop_column("counted_seq")
