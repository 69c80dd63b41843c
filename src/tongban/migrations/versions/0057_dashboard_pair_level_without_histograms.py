"""dashboard: the city-pair roll-up level keeps no histograms

No read of p50/p90 groups or filters by the city pair alone (the headlines group by
mode, the rankings by authority or matter), so the fold no longer writes histogram rows
for level `p` (domain.UNTIMED_LEVELS; a timed figure by city pair reads the daily cells).
At the bench's 1 M events they were 113,136 of the roll-ups' 321,010 histogram rows
(docs/dashboard.md, "Session 13: the fold"). This migration deletes the ones held, for
every origin; the downgrade rebuilds them from the daily cells' histograms (roll-ups are
derived data).

Revision ID: 0057
Revises: 0056
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0057"
down_revision: str | None = "0056"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The level whose histograms go, and the dimensions it keeps.
_LEVEL, _KEPT = "p", ("jurisdiction", "from_city", "to_city")


def upgrade() -> None:
    op.execute(
        "DELETE FROM dash_month_hist WHERE month_id IN "
        f"(SELECT id FROM dash_month WHERE level = '{_LEVEL}')"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        month = "CAST(date_trunc('month', c.day) AS date)"
    else:
        month = "date(c.day, 'start of month')"
    same = " AND ".join(f"r.{d} = c.{d}" for d in _KEPT)
    op.execute(
        "INSERT INTO dash_month_hist (month_id, bucket, n) "
        "SELECT r.id, h.bucket, sum(h.n) FROM dash_cell c "
        "JOIN dash_hist h ON h.cell_id = c.id "
        f"JOIN dash_month r ON r.origin = c.origin AND r.level = '{_LEVEL}' "
        f"AND r.indicator = c.indicator AND r.month = {month} AND {same} "
        "GROUP BY r.id, h.bucket"
    )
