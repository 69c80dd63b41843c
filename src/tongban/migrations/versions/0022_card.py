"""card: social-security cards, their history and device credentials (issue 15)

- card: one card of a holder (number, jurisdiction, city, generation, transport
  function, status on the kernel's state machine, the card it replaced), with the
  kernel's event counter and version guard;
- card_event: its history (kernel EventRow: unique (card_id, seq), in the audit chain);
- card_credential: the short-lived credentials the card's node signed for a device key
  of the holder, each with a pseudonymous reference (what the revocation set lists).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "card",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("jurisdiction_code", sa.String(length=6), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("holder_account_id", sa.Uuid(), nullable=True),
        sa.Column("holder_id_number", sa.String(length=18), nullable=False),
        sa.Column("holder_name", sa.String(length=80), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("concessions", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("transport", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replaces_id", sa.Uuid(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_seq", sa.Integer(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(["city_code"], ["city.code"], name=op.f("fk_card_city_code_city")),
        sa.ForeignKeyConstraint(
            ["holder_account_id"], ["account.id"], name=op.f("fk_card_holder_account_id_account")
        ),
        sa.ForeignKeyConstraint(
            ["jurisdiction_code"],
            ["jurisdiction.code"],
            name=op.f("fk_card_jurisdiction_code_jurisdiction"),
        ),
        sa.ForeignKeyConstraint(
            ["replaces_id"], ["card.id"], name=op.f("fk_card_replaces_id_card")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card")),
        sa.UniqueConstraint("number", name=op.f("uq_card_number")),
    )
    op.create_index(op.f("ix_card_city_code"), "card", ["city_code"], unique=False)
    op.create_index(op.f("ix_card_holder_account_id"), "card", ["holder_account_id"], unique=False)
    op.create_index(op.f("ix_card_holder_id_number"), "card", ["holder_id_number"], unique=False)
    op.create_index(op.f("ix_card_jurisdiction_code"), "card", ["jurisdiction_code"], unique=False)
    op.create_index(op.f("ix_card_state"), "card", ["state"], unique=False)
    op.create_table(
        "card_credential",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("card_id", sa.Uuid(), nullable=False),
        sa.Column("ref", sa.String(length=16), nullable=False),
        sa.Column("device_kid", sa.String(length=64), nullable=False),
        sa.Column("device_alg", sa.String(length=10), nullable=False),
        sa.Column("device_jwk", sa.JSON(), nullable=False),
        sa.Column("issuer_kid", sa.String(length=64), nullable=False),
        sa.Column("issuer_alg", sa.String(length=10), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enrolled_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["card_id"], ["card.id"], name=op.f("fk_card_credential_card_id_card")
        ),
        sa.ForeignKeyConstraint(
            ["enrolled_by"], ["account.id"], name=op.f("fk_card_credential_enrolled_by_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_credential")),
        sa.UniqueConstraint("ref", name=op.f("uq_card_credential_ref")),
    )
    op.create_index(
        op.f("ix_card_credential_card_id"), "card_credential", ["card_id"], unique=False
    )
    op.create_index(
        op.f("ix_card_credential_device_kid"), "card_credential", ["device_kid"], unique=False
    )
    op.create_index(
        op.f("ix_card_credential_expires_at"), "card_credential", ["expires_at"], unique=False
    )
    op.create_table(
        "card_event",
        sa.Column("card_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("from_state", sa.String(length=24), nullable=True),
        sa.Column("to_state", sa.String(length=24), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor_name", sa.String(length=80), nullable=False),
        sa.Column("actor_role", sa.String(length=20), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["account.id"], name=op.f("fk_card_event_actor_id_account")
        ),
        sa.ForeignKeyConstraint(["card_id"], ["card.id"], name=op.f("fk_card_event_card_id_card")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_event")),
        sa.UniqueConstraint("card_id", "seq", name=op.f("uq_card_event_card_id")),
    )
    op.create_index(op.f("ix_card_event_card_id"), "card_event", ["card_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_card_event_card_id"), table_name="card_event")
    op.drop_table("card_event")
    op.drop_index(op.f("ix_card_credential_expires_at"), table_name="card_credential")
    op.drop_index(op.f("ix_card_credential_device_kid"), table_name="card_credential")
    op.drop_index(op.f("ix_card_credential_card_id"), table_name="card_credential")
    op.drop_table("card_credential")
    for column in (
        "state",
        "jurisdiction_code",
        "holder_id_number",
        "holder_account_id",
        "city_code",
    ):
        op.drop_index(op.f(f"ix_card_{column}"), table_name="card")
    op.drop_table("card")
