"""kernel lifecycle more: work orders and settlements on the kernel's history, version
guard and numbering

- ticket gets `version` (optimistic guard) and `event_seq` (the number of its last
  event), filled from the events it already has; ticket_event gets `payload` and the
  kernel's state width (24); its (ticket_id, seq) is already unique.
- ticket_counter's rows move to number_counter (scope "ticket:<scope>", period = the
  day) and the table goes.
- med_settlement gets `version` and `event_seq`; med_settlement_event is its history
  (settled, reversed), unique (settlement_id, seq). Settlements made before this
  revision have no events (their settling and any reversal are in the audit chain as
  `medical.settlement` / `medical.reversal` entries); their next change is event 1.
- licence gets `row_version` (the guard; `version` is the identifier's) and
  `event_seq`; licence_event gets `actor_role` (filled from the account, else
  "system") and `payload`, and keeps its column names; licence_serial's rows move to
  number_counter (scope "licence:<type>:<issuer>", no period) and the table goes.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-28 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _versioned(table: str) -> None:
    with op.batch_alter_table(table) as batch:
        batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("event_seq", sa.Integer(), server_default="0", nullable=False))


def _unversioned(table: str) -> None:
    with op.batch_alter_table(table) as batch:
        batch.drop_column("event_seq")
        batch.drop_column("version")


def _licences_up() -> None:
    with op.batch_alter_table("licence") as batch:
        batch.add_column(sa.Column("row_version", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("event_seq", sa.Integer(), server_default="0", nullable=False))
    op.execute(
        "UPDATE licence SET event_seq = COALESCE("
        "(SELECT MAX(seq) FROM licence_event WHERE licence_event.licence_id = licence.id), 0)"
    )
    with op.batch_alter_table("licence_event") as batch:
        batch.add_column(
            sa.Column("actor_role", sa.String(length=20), server_default="system", nullable=False)
        )
        batch.add_column(sa.Column("payload", sa.JSON(), nullable=True))
    op.execute(
        "UPDATE licence_event SET actor_role = COALESCE("
        "(SELECT role FROM account WHERE account.id = licence_event.actor_id), 'system')"
    )
    with op.batch_alter_table("licence_event") as batch:
        batch.alter_column(
            "actor_role",
            existing_type=sa.String(length=20),
            existing_nullable=False,
            server_default=None,
        )
    op.execute(
        "INSERT INTO number_counter (scope, period, last) "
        "SELECT 'licence:' || type_code || ':' || issuer_code, '', last FROM licence_serial"
    )
    op.drop_table("licence_serial")


def _licences_down() -> None:
    op.create_table(
        "licence_serial",
        sa.Column("type_code", sa.String(length=40), nullable=False),
        sa.Column("issuer_code", sa.String(length=18), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("type_code", "issuer_code", name=op.f("pk_licence_serial")),
    )
    # scope = 'licence:' (8) + type + ':' + issuer (18 characters)
    op.execute(
        "INSERT INTO licence_serial (type_code, issuer_code, last) "
        "SELECT SUBSTR(scope, 9, LENGTH(scope) - 27), SUBSTR(scope, LENGTH(scope) - 17), last "
        "FROM number_counter WHERE scope LIKE 'licence:%'"
    )
    op.execute("DELETE FROM number_counter WHERE scope LIKE 'licence:%'")
    with op.batch_alter_table("licence_event") as batch:
        batch.drop_column("payload")
        batch.drop_column("actor_role")
    with op.batch_alter_table("licence") as batch:
        batch.drop_column("event_seq")
        batch.drop_column("row_version")


def upgrade() -> None:
    # --- work orders ---
    _versioned("ticket")
    op.execute(
        "UPDATE ticket SET event_seq = COALESCE("
        "(SELECT MAX(seq) FROM ticket_event WHERE ticket_event.ticket_id = ticket.id), 0)"
    )
    with op.batch_alter_table("ticket_event") as batch:
        batch.add_column(sa.Column("payload", sa.JSON(), nullable=True))
        batch.alter_column(
            "from_state", existing_type=sa.String(length=20), type_=sa.String(length=24)
        )
        batch.alter_column(
            "to_state",
            existing_type=sa.String(length=20),
            type_=sa.String(length=24),
            existing_nullable=False,
        )
    op.execute(
        "INSERT INTO number_counter (scope, period, last) "
        "SELECT 'ticket:' || scope, day, last FROM ticket_counter"
    )
    op.drop_table("ticket_counter")

    # --- settlements ---
    _versioned("med_settlement")
    op.create_table(
        "med_settlement_event",
        sa.Column("settlement_id", sa.Uuid(), nullable=False),
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
            ["actor_id"], ["account.id"], name=op.f("fk_med_settlement_event_actor_id_account")
        ),
        sa.ForeignKeyConstraint(
            ["settlement_id"],
            ["med_settlement.id"],
            name=op.f("fk_med_settlement_event_settlement_id_med_settlement"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_med_settlement_event")),
        sa.UniqueConstraint(
            "settlement_id", "seq", name=op.f("uq_med_settlement_event_settlement_id")
        ),
    )
    with op.batch_alter_table("med_settlement_event") as batch:
        batch.create_index(
            batch.f("ix_med_settlement_event_settlement_id"), ["settlement_id"], unique=False
        )

    # --- licences ---
    _licences_up()


def downgrade() -> None:
    _licences_down()

    # --- settlements ---
    with op.batch_alter_table("med_settlement_event") as batch:
        batch.drop_index(batch.f("ix_med_settlement_event_settlement_id"))
    op.drop_table("med_settlement_event")
    _unversioned("med_settlement")

    # --- work orders ---
    op.create_table(
        "ticket_counter",
        sa.Column("scope", sa.String(length=12), nullable=False),
        sa.Column("day", sa.String(length=8), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "day", name=op.f("pk_ticket_counter")),
    )
    op.execute(
        "INSERT INTO ticket_counter (scope, day, last) "
        "SELECT SUBSTR(scope, 8), period, last FROM number_counter WHERE scope LIKE 'ticket:%'"
    )
    op.execute("DELETE FROM number_counter WHERE scope LIKE 'ticket:%'")
    with op.batch_alter_table("ticket_event") as batch:
        batch.alter_column(
            "to_state",
            existing_type=sa.String(length=24),
            type_=sa.String(length=20),
            existing_nullable=False,
        )
        batch.alter_column(
            "from_state", existing_type=sa.String(length=24), type_=sa.String(length=20)
        )
        batch.drop_column("payload")
    _unversioned("ticket")
