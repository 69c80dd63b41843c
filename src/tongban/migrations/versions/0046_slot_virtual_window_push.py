"""免提交 with a licence presented at a (virtual) window: `case_presented_licence`, what a
node verified (type, licence id, issuer, verifying node, time, presentation digest) for a
material of the case, carried with the forwarded case.

Revision ID: 0046
Revises: 0045
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0046"
down_revision: str | None = "0045"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_presented_licence",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("material_code", sa.String(length=40), nullable=False),
        sa.Column("type_code", sa.String(length=40), nullable=False),
        sa.Column("type_name", sa.String(length=80), nullable=False),
        sa.Column("licence_id", sa.String(length=80), nullable=False),
        sa.Column("issuer", sa.String(length=120), nullable=False),
        sa.Column("verified_by", sa.String(length=80), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("presentation_sha256", sa.String(length=64), nullable=False),
        sa.Column("result", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["service_case.id"],
            name=op.f("fk_case_presented_licence_case_id_service_case"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_presented_licence")),
        sa.UniqueConstraint(
            "case_id", "material_code", name=op.f("uq_case_presented_licence_case_id")
        ),
    )
    op.create_index(
        op.f("ix_case_presented_licence_case_id"),
        "case_presented_licence",
        ["case_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_case_presented_licence_case_id"), table_name="case_presented_licence")
    op.drop_table("case_presented_licence")
