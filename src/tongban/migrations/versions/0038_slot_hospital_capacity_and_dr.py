"""Hospital capacity (EDXL-HAVE) and drill mode (issue 19).

- emergency_capacity_report: every capacity report of a hospital (beds by type, ventilators,
  facility and emergency department status at a time), never changed once written;
- emergency_shared_capacity: another jurisdiction's published per-city capacity aggregate;
- emergency_drill, emergency_drill_lot, emergency_drill_request: an exercise, its copies of
  the stock lots and its requests (commit, dispatch, receive on the copies only).

Revision ID: 0038
Revises: 0037
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0038"
down_revision: str | None = "0037"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "emergency_shared_capacity",
        sa.Column("jurisdiction_code", sa.String(length=6), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("hospitals", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("ed_diverting", sa.Integer(), nullable=False),
        sa.Column("oldest_report_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_node", sa.String(length=40), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "jurisdiction_code", "city_code", name=op.f("pk_emergency_shared_capacity")
        ),
    )
    op.create_table(
        "emergency_capacity_report",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_code", sa.String(length=40), nullable=False),
        sa.Column("hospital_name", sa.String(length=120), nullable=False),
        sa.Column("jurisdiction_code", sa.String(length=6), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("ed_status", sa.String(length=20), nullable=False),
        sa.Column("general_available", sa.Integer(), nullable=False),
        sa.Column("general_baseline", sa.Integer(), nullable=False),
        sa.Column("icu_available", sa.Integer(), nullable=False),
        sa.Column("icu_baseline", sa.Integer(), nullable=False),
        sa.Column("isolation_available", sa.Integer(), nullable=False),
        sa.Column("isolation_baseline", sa.Integer(), nullable=False),
        sa.Column("ventilators_available", sa.Integer(), nullable=False),
        sa.Column("ventilators_baseline", sa.Integer(), nullable=False),
        sa.Column("comment", sa.String(length=500), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("reported_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["reported_by"],
            ["account.id"],
            name=op.f("fk_emergency_capacity_report_reported_by_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_capacity_report")),
    )
    op.create_index(
        "ix_emergency_capacity_hospital_at",
        "emergency_capacity_report",
        ["hospital_code", "reported_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_emergency_capacity_report_city_code"),
        "emergency_capacity_report",
        ["city_code"],
        unique=False,
    )
    op.create_index(
        op.f("ix_emergency_capacity_report_jurisdiction_code"),
        "emergency_capacity_report",
        ["jurisdiction_code"],
        unique=False,
    )
    op.create_index(
        op.f("ix_emergency_capacity_report_reported_at"),
        "emergency_capacity_report",
        ["reported_at"],
        unique=False,
    )
    op.create_table(
        "emergency_drill",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("jurisdiction_code", sa.String(length=6), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("capacity", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("started_by", sa.Uuid(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["started_by"], ["account.id"], name=op.f("fk_emergency_drill_started_by_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_drill")),
    )
    op.create_index(
        op.f("ix_emergency_drill_jurisdiction_code"),
        "emergency_drill",
        ["jurisdiction_code"],
        unique=False,
    )
    op.create_index(op.f("ix_emergency_drill_state"), "emergency_drill", ["state"], unique=False)
    op.create_table(
        "emergency_drill_lot",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("drill_id", sa.Uuid(), nullable=False),
        sa.Column("source_lot_id", sa.Uuid(), nullable=True),
        sa.Column("point_code", sa.String(length=40), nullable=False),
        sa.Column("jurisdiction_code", sa.String(length=6), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("item_code", sa.String(length=40), nullable=False),
        sa.Column("batch", sa.String(length=40), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("copied", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["drill_id"],
            ["emergency_drill.id"],
            name=op.f("fk_emergency_drill_lot_drill_id_emergency_drill"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_drill_lot")),
    )
    op.create_index(
        op.f("ix_emergency_drill_lot_city_code"), "emergency_drill_lot", ["city_code"], unique=False
    )
    op.create_index(
        op.f("ix_emergency_drill_lot_drill_id"), "emergency_drill_lot", ["drill_id"], unique=False
    )
    op.create_index(
        op.f("ix_emergency_drill_lot_item_code"), "emergency_drill_lot", ["item_code"], unique=False
    )
    op.create_table(
        "emergency_drill_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("drill_id", sa.Uuid(), nullable=False),
        sa.Column("requester_city", sa.String(length=6), nullable=False),
        sa.Column("giver_city", sa.String(length=6), nullable=False),
        sa.Column("item_code", sa.String(length=40), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("committed", sa.Integer(), nullable=False),
        sa.Column("dispatched", sa.Integer(), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["drill_id"],
            ["emergency_drill.id"],
            name=op.f("fk_emergency_drill_request_drill_id_emergency_drill"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_drill_request")),
    )
    op.create_index(
        op.f("ix_emergency_drill_request_drill_id"),
        "emergency_drill_request",
        ["drill_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_emergency_drill_request_drill_id"), table_name="emergency_drill_request")
    op.drop_table("emergency_drill_request")
    op.drop_index(op.f("ix_emergency_drill_lot_item_code"), table_name="emergency_drill_lot")
    op.drop_index(op.f("ix_emergency_drill_lot_drill_id"), table_name="emergency_drill_lot")
    op.drop_index(op.f("ix_emergency_drill_lot_city_code"), table_name="emergency_drill_lot")
    op.drop_table("emergency_drill_lot")
    op.drop_index(op.f("ix_emergency_drill_state"), table_name="emergency_drill")
    op.drop_index(op.f("ix_emergency_drill_jurisdiction_code"), table_name="emergency_drill")
    op.drop_table("emergency_drill")
    op.drop_index(
        op.f("ix_emergency_capacity_report_reported_at"), table_name="emergency_capacity_report"
    )
    op.drop_index(
        op.f("ix_emergency_capacity_report_jurisdiction_code"),
        table_name="emergency_capacity_report",
    )
    op.drop_index(
        op.f("ix_emergency_capacity_report_city_code"), table_name="emergency_capacity_report"
    )
    op.drop_index("ix_emergency_capacity_hospital_at", table_name="emergency_capacity_report")
    op.drop_table("emergency_capacity_report")
    op.drop_table("emergency_shared_capacity")
