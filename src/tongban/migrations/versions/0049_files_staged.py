"""files: staged_file, the files a window clerk chose for an application the form
refused (a validation error), kept for the resubmission instead of being chosen again:
the file's checked type, size and SHA-256 (bytes on disk in the attachment store),
bound to the clerk's account and to the digest of the form's random token, with an
expiry (two hours); consumed by the successful submission.

Revision ID: 0049
Revises: 0048
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0049"
down_revision: str | None = "0048"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staged_file",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("material_code", sa.String(length=40), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=80), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_staged_file_account_id_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staged_file")),
    )
    op.create_index(op.f("ix_staged_file_token_sha256"), "staged_file", ["token_sha256"])
    op.create_index(op.f("ix_staged_file_account_id"), "staged_file", ["account_id"])
    op.create_index(op.f("ix_staged_file_expires_at"), "staged_file", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_staged_file_expires_at"), table_name="staged_file")
    op.drop_index(op.f("ix_staged_file_account_id"), table_name="staged_file")
    op.drop_index(op.f("ix_staged_file_token_sha256"), table_name="staged_file")
    op.drop_table("staged_file")
