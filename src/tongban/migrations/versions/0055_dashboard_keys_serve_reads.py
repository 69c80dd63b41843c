"""dashboard: the unique keys serve the pages' reads; no whole-key roll-up level

Two changes to what the dashboard's refresh writes (docs/dashboard.md, "Session 12:
stored rows"):

- `dash_cell`'s unique key begins (indicator, day, origin, …) and `dash_month`'s
  (level, indicator, month, origin, …), so the pages' range reads (indicators over a
  period; one level, indicators over months) are served by the unique key itself:
  the read indexes `ix_dash_cell_indicator_day` and
  `ix_dash_month_level_indicator_month` are dropped — one index less to write per row.
- The whole-key monthly level `*` is deleted (with its histograms): it was nearly as
  large as the daily cells; a read needing dimensions no smaller level keeps now reads
  the daily cells.

The downgrade restores the old keys and read indexes and rebuilds the `*` level of
every origin from the daily cells and their histograms (roll-ups are derived data).

Revision ID: 0055
Revises: 0054
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0055"
down_revision: str | None = "0054"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REST = ["from_city", "to_city", "jurisdiction", "category", "authority", "matter"]


def upgrade() -> None:
    op.execute(
        "DELETE FROM dash_month_hist WHERE month_id IN "
        "(SELECT id FROM dash_month WHERE level = '*')"
    )
    op.execute("DELETE FROM dash_month WHERE level = '*'")
    op.drop_index("ix_dash_cell_indicator_day", table_name="dash_cell")
    op.drop_index("uq_dash_cell_key", table_name="dash_cell")
    op.create_index(
        "uq_dash_cell_key", "dash_cell", ["indicator", "day", "origin", *_REST], unique=True
    )
    op.drop_index("ix_dash_month_level_indicator_month", table_name="dash_month")
    op.drop_index("uq_dash_month_key", table_name="dash_month")
    op.create_index(
        "uq_dash_month_key",
        "dash_month",
        ["level", "indicator", "month", "origin", *_REST],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_dash_cell_key", table_name="dash_cell")
    op.create_index(
        "uq_dash_cell_key", "dash_cell", ["origin", "indicator", "day", *_REST], unique=True
    )
    op.create_index("ix_dash_cell_indicator_day", "dash_cell", ["indicator", "day"])
    op.drop_index("uq_dash_month_key", table_name="dash_month")
    op.create_index(
        "uq_dash_month_key",
        "dash_month",
        ["origin", "level", "indicator", "month", *_REST],
        unique=True,
    )
    op.create_index(
        "ix_dash_month_level_indicator_month", "dash_month", ["level", "indicator", "month"]
    )
    if op.get_bind().dialect.name == "postgresql":
        month = "CAST(date_trunc('month', c.day) AS date)"
    else:
        month = "date(c.day, 'start of month')"
    rest = ", ".join(f"c.{d}" for d in _REST)
    op.execute(
        f"INSERT INTO dash_month (origin, level, indicator, month, {', '.join(_REST)}, "
        "n, total, extra) "
        f"SELECT c.origin, '*', c.indicator, {month}, {rest}, "
        "sum(c.n), sum(c.total), sum(c.extra) FROM dash_cell c "
        f"GROUP BY c.origin, c.indicator, {month}, {rest}"
    )
    same = " AND ".join(f"r.{d} = c.{d}" for d in _REST)
    op.execute(
        "INSERT INTO dash_month_hist (month_id, bucket, n) "
        "SELECT r.id, h.bucket, sum(h.n) FROM dash_cell c "
        "JOIN dash_hist h ON h.cell_id = c.id "
        "JOIN dash_month r ON r.origin = c.origin AND r.level = '*' "
        f"AND r.indicator = c.indicator AND r.month = {month} AND {same} "
        "GROUP BY r.id, h.bucket"
    )
