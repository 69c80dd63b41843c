"""dashboard: two roll-up levels for an authority's drill-down

The authority page groups an authority's figures by mode (category) and lists its
matters. With the whole-key level gone (0055) both read the daily cells over the period:
at the bench's 1 M events a year's authority page took 410 ms at p95 on PostgreSQL, over
the 300 ms aim (docs/dashboard.md, "Session 12: levels for the drill-down"). Two levels
keep those reads to a few rows a month: `c` (jurisdiction, authority, category) and `d`
(jurisdiction, authority, matter). The fold writes them from now on (domain.LEVELS);
this migration builds them, for every origin, from the daily cells and their histograms
(roll-ups are derived data). The downgrade deletes them.

Revision ID: 0056
Revises: 0055
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0056"
down_revision: str | None = "0055"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REST = ["from_city", "to_city", "jurisdiction", "category", "authority", "matter"]
#: The new levels and the dimensions each keeps (the others are "").
_LEVELS = {
    "c": ("jurisdiction", "authority", "category"),
    "d": ("jurisdiction", "authority", "matter"),
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        month = "CAST(date_trunc('month', c.day) AS date)"
    else:
        month = "date(c.day, 'start of month')"
    for level, kept in _LEVELS.items():
        dims = [f"c.{d}" if d in kept else "''" for d in _REST]
        grouped = ", ".join(f"c.{d}" for d in kept)
        op.execute(
            f"INSERT INTO dash_month (origin, level, indicator, month, {', '.join(_REST)}, "
            "n, total, extra) "
            f"SELECT c.origin, '{level}', c.indicator, {month}, {', '.join(dims)}, "
            "sum(c.n), sum(c.total), sum(c.extra) FROM dash_cell c "
            f"GROUP BY c.origin, c.indicator, {month}, {grouped}"
        )
        same = " AND ".join(f"r.{d} = c.{d}" for d in kept)
        op.execute(
            "INSERT INTO dash_month_hist (month_id, bucket, n) "
            "SELECT r.id, h.bucket, sum(h.n) FROM dash_cell c "
            "JOIN dash_hist h ON h.cell_id = c.id "
            f"JOIN dash_month r ON r.origin = c.origin AND r.level = '{level}' "
            f"AND r.indicator = c.indicator AND r.month = {month} AND {same} "
            "GROUP BY r.id, h.bucket"
        )


def downgrade() -> None:
    levels = ", ".join(f"'{level}'" for level in _LEVELS)
    op.execute(
        "DELETE FROM dash_month_hist WHERE month_id IN "
        f"(SELECT id FROM dash_month WHERE level IN ({levels}))"
    )
    op.execute(f"DELETE FROM dash_month WHERE level IN ({levels})")
