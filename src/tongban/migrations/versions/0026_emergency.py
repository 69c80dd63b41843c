"""emergency: reserves of emergency supplies (issue 19)

- emergency_duty: an emergency duty (储备管理员 keeper, 调度员 coordinator) of a staff
  account, for a city or a whole jurisdiction;
- emergency_point: the reserve points (储备点) of each city;
- emergency_lot: what a point holds of one batch of one item (quantity, expiry), with
  the kernel's event counter and version guard;
- emergency_lot_event: its movements (kernel EventRow: unique (lot_id, seq), in the
  audit chain);
- emergency_quota: a city's reserve quota of an item, overriding the catalogue's;
- emergency_alert: low-stock, expiry and overdue alerts, one per (kind, key);
- emergency_shared_stock: other jurisdictions' published stock per city and item.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "emergency_alert",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("jurisdiction_code", sa.String(length=6), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=True),
        sa.Column("text", sa.String(length=300), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("link", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_alert")),
        sa.UniqueConstraint("kind", "key", name=op.f("uq_emergency_alert_kind")),
    )
    op.create_index(
        op.f("ix_emergency_alert_city_code"), "emergency_alert", ["city_code"], unique=False
    )
    op.create_index(
        op.f("ix_emergency_alert_jurisdiction_code"),
        "emergency_alert",
        ["jurisdiction_code"],
        unique=False,
    )
    op.create_index(
        op.f("ix_emergency_alert_resolved_at"), "emergency_alert", ["resolved_at"], unique=False
    )
    op.create_table(
        "emergency_shared_stock",
        sa.Column("jurisdiction_code", sa.String(length=6), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("item_code", sa.String(length=40), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("available", sa.Integer(), nullable=False),
        sa.Column("expiring", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_node", sa.String(length=40), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "jurisdiction_code", "city_code", "item_code", name=op.f("pk_emergency_shared_stock")
        ),
    )
    op.create_table(
        "emergency_point",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("jurisdiction_code", sa.String(length=6), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["city_code"], ["city.code"], name=op.f("fk_emergency_point_city_code_city")
        ),
        sa.ForeignKeyConstraint(
            ["jurisdiction_code"],
            ["jurisdiction.code"],
            name=op.f("fk_emergency_point_jurisdiction_code_jurisdiction"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_point")),
        sa.UniqueConstraint("code", name=op.f("uq_emergency_point_code")),
    )
    op.create_index(
        op.f("ix_emergency_point_city_code"), "emergency_point", ["city_code"], unique=False
    )
    op.create_index(
        op.f("ix_emergency_point_jurisdiction_code"),
        "emergency_point",
        ["jurisdiction_code"],
        unique=False,
    )
    op.create_table(
        "emergency_lot",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("point_id", sa.Uuid(), nullable=False),
        sa.Column("item_code", sa.String(length=40), nullable=False),
        sa.Column("batch", sa.String(length=40), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("jurisdiction_code", sa.String(length=6), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_seq", sa.Integer(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["point_id"],
            ["emergency_point.id"],
            name=op.f("fk_emergency_lot_point_id_emergency_point"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_lot")),
        sa.UniqueConstraint(
            "point_id", "item_code", "batch", name=op.f("uq_emergency_lot_point_id")
        ),
    )
    op.create_index(
        op.f("ix_emergency_lot_city_code"), "emergency_lot", ["city_code"], unique=False
    )
    op.create_index(op.f("ix_emergency_lot_expiry"), "emergency_lot", ["expiry"], unique=False)
    op.create_index(
        op.f("ix_emergency_lot_item_code"), "emergency_lot", ["item_code"], unique=False
    )
    op.create_index(
        op.f("ix_emergency_lot_jurisdiction_code"),
        "emergency_lot",
        ["jurisdiction_code"],
        unique=False,
    )
    op.create_index(op.f("ix_emergency_lot_point_id"), "emergency_lot", ["point_id"], unique=False)
    op.create_table(
        "emergency_duty",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("duty", sa.String(length=20), nullable=False),
        sa.Column("jurisdiction_code", sa.String(length=6), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=True),
        sa.Column("granted_by", sa.Uuid(), nullable=True),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_emergency_duty_account_id_account")
        ),
        sa.ForeignKeyConstraint(
            ["city_code"], ["city.code"], name=op.f("fk_emergency_duty_city_code_city")
        ),
        sa.ForeignKeyConstraint(
            ["granted_by"], ["account.id"], name=op.f("fk_emergency_duty_granted_by_account")
        ),
        sa.ForeignKeyConstraint(
            ["jurisdiction_code"],
            ["jurisdiction.code"],
            name=op.f("fk_emergency_duty_jurisdiction_code_jurisdiction"),
        ),
        sa.PrimaryKeyConstraint("account_id", "duty", name=op.f("pk_emergency_duty")),
    )
    op.create_index(
        op.f("ix_emergency_duty_city_code"), "emergency_duty", ["city_code"], unique=False
    )
    op.create_index(
        op.f("ix_emergency_duty_jurisdiction_code"),
        "emergency_duty",
        ["jurisdiction_code"],
        unique=False,
    )
    op.create_table(
        "emergency_lot_event",
        sa.Column("lot_id", sa.Uuid(), nullable=False),
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
            ["actor_id"], ["account.id"], name=op.f("fk_emergency_lot_event_actor_id_account")
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"],
            ["emergency_lot.id"],
            name=op.f("fk_emergency_lot_event_lot_id_emergency_lot"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_lot_event")),
        sa.UniqueConstraint("lot_id", "seq", name=op.f("uq_emergency_lot_event_lot_id")),
    )
    op.create_index(
        op.f("ix_emergency_lot_event_lot_id"), "emergency_lot_event", ["lot_id"], unique=False
    )
    op.create_table(
        "emergency_quota",
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("item_code", sa.String(length=40), nullable=False),
        sa.Column("minimum", sa.Integer(), nullable=False),
        sa.Column("set_by", sa.Uuid(), nullable=True),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["city_code"], ["city.code"], name=op.f("fk_emergency_quota_city_code_city")
        ),
        sa.ForeignKeyConstraint(
            ["set_by"], ["account.id"], name=op.f("fk_emergency_quota_set_by_account")
        ),
        sa.PrimaryKeyConstraint("city_code", "item_code", name=op.f("pk_emergency_quota")),
    )


def downgrade() -> None:
    op.drop_table("emergency_quota")
    op.drop_index(op.f("ix_emergency_lot_event_lot_id"), table_name="emergency_lot_event")
    op.drop_table("emergency_lot_event")
    op.drop_index(op.f("ix_emergency_duty_jurisdiction_code"), table_name="emergency_duty")
    op.drop_index(op.f("ix_emergency_duty_city_code"), table_name="emergency_duty")
    op.drop_table("emergency_duty")
    op.drop_index(op.f("ix_emergency_lot_point_id"), table_name="emergency_lot")
    op.drop_index(op.f("ix_emergency_lot_jurisdiction_code"), table_name="emergency_lot")
    op.drop_index(op.f("ix_emergency_lot_item_code"), table_name="emergency_lot")
    op.drop_index(op.f("ix_emergency_lot_expiry"), table_name="emergency_lot")
    op.drop_index(op.f("ix_emergency_lot_city_code"), table_name="emergency_lot")
    op.drop_table("emergency_lot")
    op.drop_index(op.f("ix_emergency_point_jurisdiction_code"), table_name="emergency_point")
    op.drop_index(op.f("ix_emergency_point_city_code"), table_name="emergency_point")
    op.drop_table("emergency_point")
    op.drop_table("emergency_shared_stock")
    op.drop_index(op.f("ix_emergency_alert_resolved_at"), table_name="emergency_alert")
    op.drop_index(op.f("ix_emergency_alert_jurisdiction_code"), table_name="emergency_alert")
    op.drop_index(op.f("ix_emergency_alert_city_code"), table_name="emergency_alert")
    op.drop_table("emergency_alert")
