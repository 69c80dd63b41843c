"""lifeevents: life-event bundles (一件事) on the kernel (issue 17)

- life_bundle: one submission of a bundle by an applicant (number, definition code, the
  merged form, the files uploaded with it, state on the kernel's state machine), with the
  kernel's event counter and version guard;
- life_bundle_event: its history (kernel EventRow: unique (bundle_id, seq), in the audit
  chain);
- life_bundle_step: one row per step of the bundle's definition, pointing at the one case
  started for it (case_id unique: a re-delivered event never starts a second case).

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "life_bundle",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("bundle_code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("applicant_id", sa.Uuid(), nullable=False),
        sa.Column("applicant_name", sa.String(length=80), nullable=False),
        sa.Column("jurisdiction_code", sa.String(length=6), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("form_data", sa.JSON(), nullable=False),
        sa.Column("uploads", sa.JSON(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_seq", sa.Integer(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["applicant_id"], ["account.id"], name=op.f("fk_life_bundle_applicant_id_account")
        ),
        sa.ForeignKeyConstraint(
            ["city_code"], ["city.code"], name=op.f("fk_life_bundle_city_code_city")
        ),
        sa.ForeignKeyConstraint(
            ["jurisdiction_code"],
            ["jurisdiction.code"],
            name=op.f("fk_life_bundle_jurisdiction_code_jurisdiction"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_life_bundle")),
        sa.UniqueConstraint("number", name=op.f("uq_life_bundle_number")),
    )
    op.create_index(
        op.f("ix_life_bundle_applicant_id"), "life_bundle", ["applicant_id"], unique=False
    )
    op.create_index(
        op.f("ix_life_bundle_bundle_code"), "life_bundle", ["bundle_code"], unique=False
    )
    op.create_index(op.f("ix_life_bundle_state"), "life_bundle", ["state"], unique=False)
    op.create_table(
        "life_bundle_event",
        sa.Column("bundle_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("from_state", sa.String(length=24), nullable=True),
        sa.Column("to_state", sa.String(length=24), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor_name", sa.String(length=80), nullable=False),
        sa.Column("actor_role", sa.String(length=20), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["account.id"], name=op.f("fk_life_bundle_event_actor_id_account")
        ),
        sa.ForeignKeyConstraint(
            ["bundle_id"],
            ["life_bundle.id"],
            name=op.f("fk_life_bundle_event_bundle_id_life_bundle"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_life_bundle_event")),
        sa.UniqueConstraint("bundle_id", "seq", name=op.f("uq_life_bundle_event_bundle_id")),
    )
    op.create_index(
        op.f("ix_life_bundle_event_bundle_id"), "life_bundle_event", ["bundle_id"], unique=False
    )
    op.create_table(
        "life_bundle_step",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("bundle_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=80), nullable=False),
        sa.Column("matter_code", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("case_number", sa.String(length=32), nullable=True),
        sa.Column("jurisdiction_code", sa.String(length=6), nullable=True),
        sa.Column("authority_name", sa.String(length=80), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("licence_id", sa.Uuid(), nullable=True),
        sa.Column("licence_identifier", sa.String(length=120), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["bundle_id"],
            ["life_bundle.id"],
            name=op.f("fk_life_bundle_step_bundle_id_life_bundle"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["service_case.id"], name=op.f("fk_life_bundle_step_case_id_service_case")
        ),
        sa.ForeignKeyConstraint(
            ["jurisdiction_code"],
            ["jurisdiction.code"],
            name=op.f("fk_life_bundle_step_jurisdiction_code_jurisdiction"),
        ),
        sa.ForeignKeyConstraint(
            ["matter_code"], ["matter.code"], name=op.f("fk_life_bundle_step_matter_code_matter")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_life_bundle_step")),
        sa.UniqueConstraint("bundle_id", "key", name=op.f("uq_life_bundle_step_bundle_id")),
    )
    op.create_index(
        op.f("ix_life_bundle_step_bundle_id"), "life_bundle_step", ["bundle_id"], unique=False
    )
    op.create_index(
        op.f("ix_life_bundle_step_case_id"), "life_bundle_step", ["case_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_life_bundle_step_case_id"), table_name="life_bundle_step")
    op.drop_index(op.f("ix_life_bundle_step_bundle_id"), table_name="life_bundle_step")
    op.drop_table("life_bundle_step")
    op.drop_index(op.f("ix_life_bundle_event_bundle_id"), table_name="life_bundle_event")
    op.drop_table("life_bundle_event")
    op.drop_index(op.f("ix_life_bundle_state"), table_name="life_bundle")
    op.drop_index(op.f("ix_life_bundle_bundle_code"), table_name="life_bundle")
    op.drop_index(op.f("ix_life_bundle_applicant_id"), table_name="life_bundle")
    op.drop_table("life_bundle")
