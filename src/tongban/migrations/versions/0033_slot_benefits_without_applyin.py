"""benefits: 免申即享 on the kernel (issue 17)

- benefit_rule: one version of a benefit rule (its definition as JSON; draft, active or
  retired; unique (rule_id, version));
- benefit_subject: what the platform holds about a person for evaluation, each datum with
  its source (birth_md for the daily birthday job);
- benefit_offer: an offer or grant with the evaluation's trace, kernel history counter and
  version guard; unique (person, rule, entitlement), so a re-delivered trigger never makes
  a second one;
- benefit_review: a re-evaluation that would stop a benefit, for an officer to decide;
  unique (offer, trigger);
- benefit_offer_event, benefit_review_event: their histories (kernel EventRow, in the
  audit chain).

Revision ID: 0033
Revises: 0032
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "benefit_offer",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(length=24), nullable=False),
        sa.Column("subject_identifier", sa.String(length=18), nullable=False),
        sa.Column("subject_name", sa.String(length=80), nullable=False),
        sa.Column("rule_id", sa.String(length=40), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("entitlement", sa.String(length=40), nullable=False),
        sa.Column("trigger_key", sa.String(length=120), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("trace", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_seq", sa.Integer(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benefit_offer")),
        sa.UniqueConstraint("number", name=op.f("uq_benefit_offer_number")),
        sa.UniqueConstraint(
            "subject_identifier",
            "rule_id",
            "entitlement",
            name=op.f("uq_benefit_offer_subject_identifier"),
        ),
    )
    op.create_index(op.f("ix_benefit_offer_rule_id"), "benefit_offer", ["rule_id"], unique=False)
    op.create_index(op.f("ix_benefit_offer_state"), "benefit_offer", ["state"], unique=False)
    op.create_index(
        op.f("ix_benefit_offer_subject_identifier"),
        "benefit_offer",
        ["subject_identifier"],
        unique=False,
    )
    op.create_table(
        "benefit_rule",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_by", sa.String(length=80), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benefit_rule")),
        sa.UniqueConstraint("rule_id", "version", name=op.f("uq_benefit_rule_rule_id")),
    )
    op.create_index(op.f("ix_benefit_rule_rule_id"), "benefit_rule", ["rule_id"], unique=False)
    op.create_index(op.f("ix_benefit_rule_state"), "benefit_rule", ["state"], unique=False)
    op.create_table(
        "benefit_subject",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("identifier", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("birth_md", sa.String(length=5), nullable=True),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benefit_subject")),
        sa.UniqueConstraint("identifier", name=op.f("uq_benefit_subject_identifier")),
    )
    op.create_index(
        op.f("ix_benefit_subject_birth_md"), "benefit_subject", ["birth_md"], unique=False
    )
    op.create_table(
        "benefit_review",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("offer_id", sa.Uuid(), nullable=False),
        sa.Column("trigger_key", sa.String(length=120), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("trace", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("event_seq", sa.Integer(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["benefit_offer.id"],
            name=op.f("fk_benefit_review_offer_id_benefit_offer"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benefit_review")),
        sa.UniqueConstraint("offer_id", "trigger_key", name=op.f("uq_benefit_review_offer_id")),
    )
    op.create_index(
        op.f("ix_benefit_review_offer_id"), "benefit_review", ["offer_id"], unique=False
    )
    op.create_index(op.f("ix_benefit_review_state"), "benefit_review", ["state"], unique=False)
    op.create_table(
        "benefit_offer_event",
        sa.Column("offer_id", sa.Uuid(), nullable=False),
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
            ["actor_id"], ["account.id"], name=op.f("fk_benefit_offer_event_actor_id_account")
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["benefit_offer.id"],
            name=op.f("fk_benefit_offer_event_offer_id_benefit_offer"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benefit_offer_event")),
        sa.UniqueConstraint("offer_id", "seq", name=op.f("uq_benefit_offer_event_offer_id")),
    )
    op.create_index(
        op.f("ix_benefit_offer_event_offer_id"), "benefit_offer_event", ["offer_id"], unique=False
    )
    op.create_table(
        "benefit_review_event",
        sa.Column("review_id", sa.Uuid(), nullable=False),
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
            ["actor_id"], ["account.id"], name=op.f("fk_benefit_review_event_actor_id_account")
        ),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["benefit_review.id"],
            name=op.f("fk_benefit_review_event_review_id_benefit_review"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benefit_review_event")),
        sa.UniqueConstraint("review_id", "seq", name=op.f("uq_benefit_review_event_review_id")),
    )
    op.create_index(
        op.f("ix_benefit_review_event_review_id"),
        "benefit_review_event",
        ["review_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_benefit_review_event_review_id"), table_name="benefit_review_event")
    op.drop_table("benefit_review_event")
    op.drop_index(op.f("ix_benefit_offer_event_offer_id"), table_name="benefit_offer_event")
    op.drop_table("benefit_offer_event")
    op.drop_index(op.f("ix_benefit_review_state"), table_name="benefit_review")
    op.drop_index(op.f("ix_benefit_review_offer_id"), table_name="benefit_review")
    op.drop_table("benefit_review")
    op.drop_index(op.f("ix_benefit_subject_birth_md"), table_name="benefit_subject")
    op.drop_table("benefit_subject")
    op.drop_index(op.f("ix_benefit_rule_state"), table_name="benefit_rule")
    op.drop_index(op.f("ix_benefit_rule_rule_id"), table_name="benefit_rule")
    op.drop_table("benefit_rule")
    op.drop_index(op.f("ix_benefit_offer_subject_identifier"), table_name="benefit_offer")
    op.drop_index(op.f("ix_benefit_offer_state"), table_name="benefit_offer")
    op.drop_index(op.f("ix_benefit_offer_rule_id"), table_name="benefit_offer")
    op.drop_table("benefit_offer")
