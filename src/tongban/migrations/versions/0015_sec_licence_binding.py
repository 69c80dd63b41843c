"""sec licence binding: holder device keys and the key a licence is bound to (cnf)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28 20:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "holder_key",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("jwk", sa.JSON(), nullable=False),
        sa.Column("thumbprint", sa.String(length=64), nullable=False),
        sa.Column("alg", sa.String(length=10), nullable=False),
        sa.Column("label", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_holder_key_account_id_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holder_key")),
        sa.UniqueConstraint("account_id", "thumbprint", name=op.f("uq_holder_key_account_id")),
    )
    with op.batch_alter_table("holder_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_holder_key_account_id"), ["account_id"], unique=False)
    with op.batch_alter_table("licence", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cnf_kid", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("licence", schema=None) as batch_op:
        batch_op.drop_column("cnf_kid")
    with op.batch_alter_table("holder_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_holder_key_account_id"))
    op.drop_table("holder_key")
