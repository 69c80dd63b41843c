"""kernel lifecycle: one numbering table, the version guard and event counter of cases

- number_counter (scope, period, last) replaces case_number_counter (rows move over
  with scope "case:<city>" and period = the day); work orders and licence serials move
  onto it in a later revision.
- service_case gets `version` (optimistic guard, SQLAlchemy version_id_col) and
  `event_seq` (the number of its last event, from which the next one is numbered),
  filled from the events it already has.
- case_event gets `payload` (JSON, optional); (case_id, seq) is already unique.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-28 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "number_counter",
        sa.Column("scope", sa.String(length=80), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "period", name=op.f("pk_number_counter")),
    )
    op.execute(
        "INSERT INTO number_counter (scope, period, last) "
        "SELECT 'case:' || city_code, day, last FROM case_number_counter"
    )
    op.drop_table("case_number_counter")
    with op.batch_alter_table("service_case") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("event_seq", sa.Integer(), server_default="0", nullable=False))
    op.execute(
        "UPDATE service_case SET event_seq = COALESCE("
        "(SELECT MAX(seq) FROM case_event WHERE case_event.case_id = service_case.id), 0)"
    )
    with op.batch_alter_table("case_event") as batch:
        batch.add_column(sa.Column("payload", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("case_event") as batch:
        batch.drop_column("payload")
    with op.batch_alter_table("service_case") as batch:
        batch.drop_column("event_seq")
        batch.drop_column("version")
    op.create_table(
        "case_number_counter",
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("day", sa.String(length=8), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("city_code", "day", name=op.f("pk_case_number_counter")),
    )
    op.execute(
        "INSERT INTO case_number_counter (city_code, day, last) "
        "SELECT SUBSTR(scope, 6), period, last FROM number_counter WHERE scope LIKE 'case:%'"
    )
    op.drop_table("number_counter")
