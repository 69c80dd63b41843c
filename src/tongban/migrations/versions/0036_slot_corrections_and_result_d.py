"""cases: corrections that can be completed, the paused clock, result documents (issue 13)

- service_case gets the statutory clock's pause (clock_paused_since, clock_paused_days);
- case_correction: a correction notice (补正通知) with its named items, reasons and
  deadline, one per stage (一次性告知);
- case_document: a result document (决定书) stored once by its hash, with the token of
  its verify URL.

Revision ID: 0036
Revises: 0035
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0036"
down_revision: str | None = "0035"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("service_case") as batch:
        batch.add_column(sa.Column("clock_paused_since", sa.Date(), nullable=True))
        batch.add_column(
            sa.Column("clock_paused_days", sa.Integer(), server_default="0", nullable=False)
        )

    op.create_table(
        "case_correction",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("stage", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("deadline_days", sa.Integer(), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reminded_on", sa.Date(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["service_case.id"], name=op.f("fk_case_correction_case_id_service_case")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_correction")),
        sa.UniqueConstraint("case_id", "stage", name=op.f("uq_case_correction_case_id")),
    )
    with op.batch_alter_table("case_correction") as batch:
        batch.create_index(batch.f("ix_case_correction_case_id"), ["case_id"])
        batch.create_index(batch.f("ix_case_correction_deadline"), ["deadline"])
        batch.create_index(batch.f("ix_case_correction_status"), ["status"])

    op.create_table(
        "case_document",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("title", sa.String(length=80), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["service_case.id"], name=op.f("fk_case_document_case_id_service_case")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_document")),
        sa.UniqueConstraint("token", name=op.f("uq_case_document_token")),
    )
    with op.batch_alter_table("case_document") as batch:
        batch.create_index(batch.f("ix_case_document_case_id"), ["case_id"])


def downgrade() -> None:
    op.drop_table("case_document")
    op.drop_table("case_correction")
    with op.batch_alter_table("service_case") as batch:
        batch.drop_column("clock_paused_days")
        batch.drop_column("clock_paused_since")
