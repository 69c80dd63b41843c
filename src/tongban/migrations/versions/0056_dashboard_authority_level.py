"""dashboard: a roll-up level for an authority's figures by mode

The authority page groups an authority's figures by mode (category). With the whole-key
level gone (0055) that read the daily cells over the period: at the bench's 1 M events a
year's authority page took 410 ms at p95 on PostgreSQL, over the 300 ms aim
(docs/dashboard.md, "Session 12: a level for the authority's page"). Level `c`
(jurisdiction, authority, category) keeps that read to a few rows per authority and
month. The fold writes it from now on (domain.LEVELS); this migration builds it, for
every origin, from the daily cells and their histograms (roll-ups are derived data). The
downgrade deletes it. (A level `d` for an authority's matters was measured and left out:
at the bench's data it held 270,437 rows and took the refresh from 16.5 to 24.2 s.)

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
#: The new level and the dimensions it keeps (the others are "").
_LEVELS = {"c": ("jurisdiction", "authority", "category")}


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
