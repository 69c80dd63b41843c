"""Emergency stock sums maintained with every movement (issue 19: the reserve table and
the published aggregates read them instead of summing every lot):

- emergency_stock_total: per city and item, the units held and the points holding some;
- emergency_stock_expiry: per city, perishable item and expiry date, the units held;
- emergency_stock_point: per reserve point and item, the units held over its batches.

Backfilled here from the lots as they stand.

Revision ID: 0044
Revises: 0043
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0044"
down_revision: str | None = "0043"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "emergency_stock_total",
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("item_code", sa.String(length=40), nullable=False),
        sa.Column("jurisdiction_code", sa.String(length=6), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("city_code", "item_code", name=op.f("pk_emergency_stock_total")),
    )
    op.create_index(
        op.f("ix_emergency_stock_total_jurisdiction_code"),
        "emergency_stock_total",
        ["jurisdiction_code"],
    )
    op.create_index(
        op.f("ix_emergency_stock_total_item_code"), "emergency_stock_total", ["item_code"]
    )
    op.create_table(
        "emergency_stock_expiry",
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("item_code", sa.String(length=40), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=False),
        sa.Column("jurisdiction_code", sa.String(length=6), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "city_code", "item_code", "expiry", name=op.f("pk_emergency_stock_expiry")
        ),
    )
    op.create_index(op.f("ix_emergency_stock_expiry_expiry"), "emergency_stock_expiry", ["expiry"])
    op.create_index(
        op.f("ix_emergency_stock_expiry_jurisdiction_code"),
        "emergency_stock_expiry",
        ["jurisdiction_code"],
    )
    op.create_index(
        "ix_emergency_stock_expiry_item_expiry", "emergency_stock_expiry", ["item_code", "expiry"]
    )
    op.create_table(
        "emergency_stock_point",
        sa.Column("point_id", sa.Uuid(), nullable=False),
        sa.Column("item_code", sa.String(length=40), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["point_id"],
            ["emergency_point.id"],
            name=op.f("fk_emergency_stock_point_point_id_emergency_point"),
        ),
        sa.PrimaryKeyConstraint("point_id", "item_code", name=op.f("pk_emergency_stock_point")),
    )
    # The lots as they stand (a lot's jurisdiction and city are its point's).
    op.execute(
        "INSERT INTO emergency_stock_point (point_id, item_code, quantity) "
        "SELECT point_id, item_code, SUM(quantity) FROM emergency_lot "
        "GROUP BY point_id, item_code HAVING SUM(quantity) > 0"
    )
    op.execute(
        "INSERT INTO emergency_stock_total "
        "(city_code, item_code, jurisdiction_code, quantity, points) "
        "SELECT city_code, item_code, MIN(jurisdiction_code), SUM(quantity), "
        "COUNT(DISTINCT CASE WHEN quantity > 0 THEN point_id END) FROM emergency_lot "
        "GROUP BY city_code, item_code HAVING SUM(quantity) > 0"
    )
    op.execute(
        "INSERT INTO emergency_stock_expiry "
        "(city_code, item_code, expiry, jurisdiction_code, quantity) "
        "SELECT city_code, item_code, expiry, MIN(jurisdiction_code), SUM(quantity) "
        "FROM emergency_lot WHERE expiry IS NOT NULL "
        "GROUP BY city_code, item_code, expiry HAVING SUM(quantity) > 0"
    )


def downgrade() -> None:
    op.drop_table("emergency_stock_point")
    op.drop_index(
        op.f("ix_emergency_stock_expiry_jurisdiction_code"), table_name="emergency_stock_expiry"
    )
    op.drop_index("ix_emergency_stock_expiry_item_expiry", table_name="emergency_stock_expiry")
    op.drop_index(op.f("ix_emergency_stock_expiry_expiry"), table_name="emergency_stock_expiry")
    op.drop_table("emergency_stock_expiry")
    op.drop_index(
        op.f("ix_emergency_stock_total_jurisdiction_code"), table_name="emergency_stock_total"
    )
    op.drop_index(op.f("ix_emergency_stock_total_item_code"), table_name="emergency_stock_total")
    op.drop_table("emergency_stock_total")
