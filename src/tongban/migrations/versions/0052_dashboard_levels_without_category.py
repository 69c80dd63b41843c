"""dashboard: the authority, matter and city-pair roll-up levels without the category

The monthly roll-ups' levels `a` (authority), `m` (matter) and `p` (city pair) kept the
category dimension (the mode, the score …); the pages group them by indicator only, so
a year's ranking and heat map read three rows per authority or pair and month where one
would do. From now on those levels keep (jurisdiction, authority), (jurisdiction,
matter) and (jurisdiction, from city, to city) (`domain.LEVELS`).

The roll-ups are derived data: this migration rebuilds the three levels, with their
histograms, from the whole-key level `*` of every origin (this node's own and the
copies other nodes published), so nothing has to be refolded. The downgrade rebuilds
them with the category again, the same way.

Revision ID: 0052
Revises: 0051
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0052"
down_revision: str | None = "0051"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REST = ("from_city", "to_city", "jurisdiction", "category", "authority", "matter")
_NEW = {
    "a": ("jurisdiction", "authority"),
    "m": ("jurisdiction", "matter"),
    "p": ("jurisdiction", "from_city", "to_city"),
}
_OLD = {
    "a": ("jurisdiction", "category", "authority"),
    "m": ("jurisdiction", "category", "matter"),
    "p": ("jurisdiction", "category", "from_city", "to_city"),
}


def _rebuild(levels: dict[str, tuple[str, ...]]) -> None:
    names = ", ".join(f"'{name}'" for name in levels)
    op.execute(
        "DELETE FROM dash_month_hist WHERE month_id IN "
        f"(SELECT id FROM dash_month WHERE level IN ({names}))"
    )
    op.execute(f"DELETE FROM dash_month WHERE level IN ({names})")
    for level, kept in levels.items():
        dims = ", ".join(f"s.{d}" if d in kept else "''" for d in _REST)
        group = ", ".join(f"s.{d}" for d in kept)
        op.execute(
            "INSERT INTO dash_month (origin, level, indicator, month, "
            f"{', '.join(_REST)}, n, total, extra) "
            f"SELECT s.origin, '{level}', s.indicator, s.month, {dims}, "
            "sum(s.n), sum(s.total), sum(s.extra) FROM dash_month s WHERE s.level = '*' "
            f"GROUP BY s.origin, s.indicator, s.month, {group}"
        )
        same = " AND ".join(f"r.{d} = s.{d}" if d in kept else f"r.{d} = ''" for d in _REST)
        op.execute(
            "INSERT INTO dash_month_hist (month_id, bucket, n) "
            "SELECT r.id, h.bucket, sum(h.n) FROM dash_month s "
            "JOIN dash_month_hist h ON h.month_id = s.id "
            f"JOIN dash_month r ON r.origin = s.origin AND r.level = '{level}' "
            f"AND r.indicator = s.indicator AND r.month = s.month AND {same} "
            "WHERE s.level = '*' GROUP BY r.id, h.bucket"
        )


def upgrade() -> None:
    _rebuild(_NEW)


def downgrade() -> None:
    _rebuild(_OLD)
