"""card: revocation lists received from other nodes, and the uses of codes at gates (issue 15)

- card_revocations_received: the newest signed revocation list of another node's
  jurisdiction, passed on unchanged to this node's gates;
- card_use: a code shown at a gate or venue (admitted or refused, the reason, the
  benefit rule that applied), uploaded by the gate under its own id (idempotent) and
  forwarded to the node of the card's jurisdiction;
- card_gate: the gates allowed to upload, each with the public key its uploads are
  signed with.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "card_gate",
        sa.Column("gate_id", sa.String(length=64), nullable=False),
        sa.Column("venue_code", sa.String(length=60), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("registered_by", sa.Uuid(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["registered_by"], ["account.id"], name=op.f("fk_card_gate_registered_by_account")
        ),
        sa.PrimaryKeyConstraint("gate_id", name=op.f("pk_card_gate")),
    )
    op.create_index(op.f("ix_card_gate_venue_code"), "card_gate", ["venue_code"], unique=False)
    op.create_table(
        "card_revocations_received",
        sa.Column("jurisdiction_code", sa.String(length=6), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("iat", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_node", sa.String(length=40), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["jurisdiction_code"],
            ["jurisdiction.code"],
            name=op.f("fk_card_revocations_received_jurisdiction_code_jurisdiction"),
        ),
        sa.PrimaryKeyConstraint("jurisdiction_code", name=op.f("pk_card_revocations_received")),
    )
    op.create_table(
        "card_use",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("gate_id", sa.String(length=64), nullable=False),
        sa.Column("venue_code", sa.String(length=60), nullable=False),
        sa.Column("venue_name", sa.String(length=120), nullable=False),
        sa.Column("venue_city", sa.String(length=6), nullable=False),
        sa.Column("card_jurisdiction", sa.String(length=6), nullable=True),
        sa.Column("card_ref", sa.String(length=16), nullable=True),
        sa.Column("card_id", sa.Uuid(), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("code_time", sa.Integer(), nullable=True),
        sa.Column("admitted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=True),
        sa.Column("rule", sa.String(length=80), nullable=True),
        sa.Column("benefit", sa.String(length=120), nullable=True),
        sa.Column("why", sa.String(length=300), nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["card_id"], ["card.id"], name=op.f("fk_card_use_card_id_card")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_use")),
    )
    op.create_index(op.f("ix_card_use_card_id"), "card_use", ["card_id"], unique=False)
    op.create_index(
        op.f("ix_card_use_card_jurisdiction"), "card_use", ["card_jurisdiction"], unique=False
    )
    op.create_index(op.f("ix_card_use_card_ref"), "card_use", ["card_ref"], unique=False)
    op.create_index(op.f("ix_card_use_gate_id"), "card_use", ["gate_id"], unique=False)
    op.create_index(op.f("ix_card_use_used_at"), "card_use", ["used_at"], unique=False)
    op.create_index(op.f("ix_card_use_venue_code"), "card_use", ["venue_code"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_card_use_venue_code"), table_name="card_use")
    op.drop_index(op.f("ix_card_use_used_at"), table_name="card_use")
    op.drop_index(op.f("ix_card_use_gate_id"), table_name="card_use")
    op.drop_index(op.f("ix_card_use_card_ref"), table_name="card_use")
    op.drop_index(op.f("ix_card_use_card_jurisdiction"), table_name="card_use")
    op.drop_index(op.f("ix_card_use_card_id"), table_name="card_use")
    op.drop_table("card_use")
    op.drop_table("card_revocations_received")
    op.drop_index(op.f("ix_card_gate_venue_code"), table_name="card_gate")
    op.drop_table("card_gate")
