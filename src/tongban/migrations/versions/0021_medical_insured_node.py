"""medical: the insured person's node owns their record (issue 12)

- med_reservation (+ med_reservation_event, its history): the accumulators one hospital
  transaction took on the insured node, reserved → confirmed / released / expired /
  reversed;
- med_visit and med_settlement no longer point at a local med_insured row (the person
  lives on their insured node): they keep who the insured node said the person is (ID
  number, name; the visit also where and in which scheme they are insured), backfilled
  from med_insured; the settlement's filing id is the insured node's, without a foreign
  key;
- med_settlement gets the reservation's id and the state the insured node last
  acknowledged (`insured_ack`; existing settlements were settled on one node, so they
  are confirmed).

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-30 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _reservation_tables() -> None:
    op.create_table(
        "med_reservation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("insured_id", sa.Uuid(), nullable=False),
        sa.Column("institution_code", sa.String(length=20), nullable=False),
        sa.Column("institution_name", sa.String(length=80), nullable=False),
        sa.Column("treatment_jurisdiction", sa.String(length=6), nullable=False),
        sa.Column("treatment_city", sa.String(length=6), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("txn_id", sa.String(length=40), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("filing_id", sa.Uuid(), nullable=True),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("class_a", sa.BigInteger(), nullable=False),
        sa.Column("class_b", sa.BigInteger(), nullable=False),
        sa.Column("class_c", sa.BigInteger(), nullable=False),
        sa.Column("eligible", sa.BigInteger(), nullable=False),
        sa.Column("deductible_part", sa.BigInteger(), nullable=False),
        sa.Column("fund", sa.BigInteger(), nullable=False),
        sa.Column("account", sa.BigInteger(), nullable=False),
        sa.Column("cash", sa.BigInteger(), nullable=False),
        sa.Column("before_deductible_used", sa.BigInteger(), nullable=False),
        sa.Column("before_fund_paid", sa.BigInteger(), nullable=False),
        sa.Column("before_balance", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("event_seq", sa.Integer(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["filing_id"], ["med_filing.id"], name=op.f("fk_med_reservation_filing_id_med_filing")
        ),
        sa.ForeignKeyConstraint(
            ["insured_id"],
            ["med_insured.id"],
            name=op.f("fk_med_reservation_insured_id_med_insured"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_med_reservation")),
        sa.UniqueConstraint(
            "institution_code", "txn_id", name=op.f("uq_med_reservation_institution_code")
        ),
    )
    with op.batch_alter_table("med_reservation") as batch:
        batch.create_index(batch.f("ix_med_reservation_insured_id"), ["insured_id"], unique=False)
        batch.create_index("ix_med_reservation_state_expires", ["state", "expires_at"])
    op.create_table(
        "med_reservation_event",
        sa.Column("reservation_id", sa.Uuid(), nullable=False),
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
            ["actor_id"], ["account.id"], name=op.f("fk_med_reservation_event_actor_id_account")
        ),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["med_reservation.id"],
            name=op.f("fk_med_reservation_event_reservation_id_med_reservation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_med_reservation_event")),
        sa.UniqueConstraint(
            "reservation_id", "seq", name=op.f("uq_med_reservation_event_reservation_id")
        ),
    )
    with op.batch_alter_table("med_reservation_event") as batch:
        batch.create_index(
            batch.f("ix_med_reservation_event_reservation_id"), ["reservation_id"], unique=False
        )


def _person_of(table: str, column: str) -> str:
    return f"(SELECT p.{column} FROM med_insured p WHERE p.id = {table}.insured_id)"


def upgrade() -> None:
    _reservation_tables()

    # --- visits: who the insured node said the person is --------------------------
    with op.batch_alter_table("med_visit") as batch:
        batch.add_column(sa.Column("id_number", sa.String(length=18), nullable=True))
        batch.add_column(sa.Column("insured_name", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("insured_jurisdiction", sa.String(length=6), nullable=True))
        batch.add_column(sa.Column("insured_city", sa.String(length=6), nullable=True))
        batch.add_column(sa.Column("insured_district", sa.String(length=6), nullable=True))
        batch.add_column(sa.Column("scheme", sa.String(length=10), nullable=True))
    for column, source in (
        ("id_number", "id_number"),
        ("insured_name", "name"),
        ("insured_jurisdiction", "jurisdiction_code"),
        ("insured_city", "city_code"),
        ("insured_district", "district_code"),
        ("scheme", "scheme"),
    ):
        op.execute(f"UPDATE med_visit SET {column} = {_person_of('med_visit', source)}")
    with op.batch_alter_table("med_visit") as batch:
        for column, length in (
            ("id_number", 18),
            ("insured_name", 40),
            ("insured_jurisdiction", 6),
            ("insured_city", 6),
            ("scheme", 10),
        ):
            batch.alter_column(column, existing_type=sa.String(length=length), nullable=False)
        batch.drop_index("ix_med_visit_insured_id")
        batch.drop_constraint("fk_med_visit_insured_id_med_insured", type_="foreignkey")
        batch.drop_column("insured_id")
        batch.create_index(batch.f("ix_med_visit_id_number"), ["id_number"], unique=False)

    # --- settlements ---------------------------------------------------------------
    with op.batch_alter_table("med_settlement") as batch:
        batch.add_column(sa.Column("id_number", sa.String(length=18), nullable=True))
        batch.add_column(sa.Column("insured_name", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("reservation_id", sa.Uuid(), nullable=True))
        batch.add_column(
            sa.Column(
                "insured_ack", sa.String(length=10), server_default="confirmed", nullable=False
            )
        )
    op.execute(f"UPDATE med_settlement SET id_number = {_person_of('med_settlement', 'id_number')}")
    op.execute(f"UPDATE med_settlement SET insured_name = {_person_of('med_settlement', 'name')}")
    op.execute("UPDATE med_settlement SET insured_ack = 'reversed' WHERE status = 'reversed'")
    with op.batch_alter_table("med_settlement") as batch:
        batch.alter_column("id_number", existing_type=sa.String(length=18), nullable=False)
        batch.alter_column("insured_name", existing_type=sa.String(length=40), nullable=False)
        batch.drop_index("ix_med_settlement_insured_id")
        batch.drop_constraint("fk_med_settlement_insured_id_med_insured", type_="foreignkey")
        batch.drop_constraint("fk_med_settlement_filing_id_med_filing", type_="foreignkey")
        batch.drop_column("insured_id")
        batch.create_index(batch.f("ix_med_settlement_id_number"), ["id_number"], unique=False)
        batch.create_index(batch.f("ix_med_settlement_insured_ack"), ["insured_ack"], unique=False)


def _insured_id_of(table: str) -> str:
    return f"(SELECT p.id FROM med_insured p WHERE p.id_number = {table}.id_number)"


def downgrade() -> None:
    bind = op.get_bind()
    for table in ("med_visit", "med_settlement"):
        orphans = bind.execute(
            sa.text(
                f"SELECT count(*) FROM {table} WHERE NOT EXISTS "
                f"(SELECT 1 FROM med_insured p WHERE p.id_number = {table}.id_number)"
            )
        ).scalar()
        if orphans:
            raise RuntimeError(
                f"{orphans} row(s) of {table} name a person insured on another node; the "
                "schema before 0021 needs a local med_insured row for each"
            )
    with op.batch_alter_table("med_settlement") as batch:
        batch.add_column(sa.Column("insured_id", sa.Uuid(), nullable=True))
    op.execute(f"UPDATE med_settlement SET insured_id = {_insured_id_of('med_settlement')}")
    with op.batch_alter_table("med_settlement") as batch:
        batch.alter_column("insured_id", existing_type=sa.Uuid(), nullable=False)
        batch.drop_index(batch.f("ix_med_settlement_insured_ack"))
        batch.drop_index(batch.f("ix_med_settlement_id_number"))
        batch.drop_column("insured_ack")
        batch.drop_column("reservation_id")
        batch.drop_column("insured_name")
        batch.drop_column("id_number")
        batch.create_foreign_key(
            "fk_med_settlement_insured_id_med_insured", "med_insured", ["insured_id"], ["id"]
        )
        batch.create_foreign_key(
            "fk_med_settlement_filing_id_med_filing", "med_filing", ["filing_id"], ["id"]
        )
        batch.create_index("ix_med_settlement_insured_id", ["insured_id"], unique=False)

    with op.batch_alter_table("med_visit") as batch:
        batch.add_column(sa.Column("insured_id", sa.Uuid(), nullable=True))
    op.execute(f"UPDATE med_visit SET insured_id = {_insured_id_of('med_visit')}")
    with op.batch_alter_table("med_visit") as batch:
        batch.alter_column("insured_id", existing_type=sa.Uuid(), nullable=False)
        batch.drop_index(batch.f("ix_med_visit_id_number"))
        for column in (
            "scheme",
            "insured_district",
            "insured_city",
            "insured_jurisdiction",
            "insured_name",
            "id_number",
        ):
            batch.drop_column(column)
        batch.create_foreign_key(
            "fk_med_visit_insured_id_med_insured", "med_insured", ["insured_id"], ["id"]
        )
        batch.create_index("ix_med_visit_insured_id", ["insured_id"], unique=False)

    with op.batch_alter_table("med_reservation_event") as batch:
        batch.drop_index(batch.f("ix_med_reservation_event_reservation_id"))
    op.drop_table("med_reservation_event")
    with op.batch_alter_table("med_reservation") as batch:
        batch.drop_index("ix_med_reservation_state_expires")
        batch.drop_index(batch.f("ix_med_reservation_insured_id"))
    op.drop_table("med_reservation")
