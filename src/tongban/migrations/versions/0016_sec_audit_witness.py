"""sec audit witness: peer nodes cosign each other's audit checkpoints (issue 10 item 13)

audit_cosignature holds the cosignatures this node's checkpoints received; as a witness,
audit_witnessed holds the other nodes' checkpoints it cosigned and audit_witness_alarm
the ones it refused (a rewritten history).

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-28 20:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_cosignature",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("witness", sa.String(length=40), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("alg", sa.String(length=10), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", "witness", name=op.f("pk_audit_cosignature")),
    )
    op.create_table(
        "audit_witnessed",
        sa.Column("origin_node", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("checkpoint_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("alg", sa.String(length=10), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("cosigner_kid", sa.String(length=64), nullable=False),
        sa.Column("cosignature", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("origin_node", "seq", name=op.f("pk_audit_witnessed")),
    )
    op.create_table(
        "audit_witness_alarm",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("origin_node", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("known_seq", sa.BigInteger(), nullable=True),
        sa.Column("known_hash", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_witness_alarm")),
    )
    with op.batch_alter_table("audit_witness_alarm", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_witness_alarm_origin_node"), ["origin_node"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_witness_alarm", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_witness_alarm_origin_node"))
    op.drop_table("audit_witness_alarm")
    op.drop_table("audit_witnessed")
    op.drop_table("audit_cosignature")
