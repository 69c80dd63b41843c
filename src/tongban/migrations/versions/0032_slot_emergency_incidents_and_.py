"""Incidents (突发事件联防联控) and hand-overs of person-related cases (协查移交), issue 19:
the incident with its history and tasks, the hand-over with its history (emergency/
incidents_models.py).

Revision ID: 0032
Revises: 0031
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "emergency_handover",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(length=24), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=True),
        sa.Column("incident_number", sa.String(length=24), nullable=True),
        sa.Column("purpose", sa.String(length=30), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("sender_jurisdiction", sa.String(length=6), nullable=False),
        sa.Column("sender_city", sa.String(length=6), nullable=False),
        sa.Column("receiver_jurisdiction", sa.String(length=6), nullable=False),
        sa.Column("receiver_city", sa.String(length=6), nullable=False),
        sa.Column("owner_jurisdiction", sa.String(length=6), nullable=False),
        sa.Column("subject", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("answer", sa.String(length=8), nullable=True),
        sa.Column("answer_note", sa.Text(), nullable=False),
        sa.Column("replica", sa.Boolean(), nullable=False),
        sa.Column("offered_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("transferred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("event_seq", sa.Integer(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["offered_by"], ["account.id"], name=op.f("fk_emergency_handover_offered_by_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_handover")),
        sa.UniqueConstraint("number", name=op.f("uq_emergency_handover_number")),
    )
    op.create_index(
        op.f("ix_emergency_handover_incident_id"),
        "emergency_handover",
        ["incident_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_emergency_handover_owner_jurisdiction"),
        "emergency_handover",
        ["owner_jurisdiction"],
        unique=False,
    )
    op.create_index(
        op.f("ix_emergency_handover_receiver_jurisdiction"),
        "emergency_handover",
        ["receiver_jurisdiction"],
        unique=False,
    )
    op.create_index(
        op.f("ix_emergency_handover_sender_jurisdiction"),
        "emergency_handover",
        ["sender_jurisdiction"],
        unique=False,
    )
    op.create_index(
        op.f("ix_emergency_handover_state"), "emergency_handover", ["state"], unique=False
    )
    op.create_table(
        "emergency_incident",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(length=24), nullable=False),
        sa.Column("type", sa.String(length=12), nullable=False),
        sa.Column("severity", sa.String(length=4), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("lead_jurisdiction", sa.String(length=6), nullable=False),
        sa.Column("lead_city", sa.String(length=6), nullable=False),
        sa.Column("cities", sa.JSON(), nullable=False),
        sa.Column("participants", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("replica", sa.Boolean(), nullable=False),
        sa.Column("opened_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("event_seq", sa.Integer(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["opened_by"], ["account.id"], name=op.f("fk_emergency_incident_opened_by_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_incident")),
        sa.UniqueConstraint("number", name=op.f("uq_emergency_incident_number")),
    )
    op.create_index(
        op.f("ix_emergency_incident_lead_jurisdiction"),
        "emergency_incident",
        ["lead_jurisdiction"],
        unique=False,
    )
    op.create_index(
        op.f("ix_emergency_incident_state"), "emergency_incident", ["state"], unique=False
    )
    op.create_table(
        "emergency_handover_event",
        sa.Column("handover_id", sa.Uuid(), nullable=False),
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
            ["actor_id"], ["account.id"], name=op.f("fk_emergency_handover_event_actor_id_account")
        ),
        sa.ForeignKeyConstraint(
            ["handover_id"],
            ["emergency_handover.id"],
            name=op.f("fk_emergency_handover_event_handover_id_emergency_handover"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_handover_event")),
        sa.UniqueConstraint(
            "handover_id", "seq", name=op.f("uq_emergency_handover_event_handover_id")
        ),
    )
    op.create_index(
        op.f("ix_emergency_handover_event_handover_id"),
        "emergency_handover_event",
        ["handover_id"],
        unique=False,
    )
    op.create_table(
        "emergency_incident_event",
        sa.Column("incident_id", sa.Uuid(), nullable=False),
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
            ["actor_id"], ["account.id"], name=op.f("fk_emergency_incident_event_actor_id_account")
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["emergency_incident.id"],
            name=op.f("fk_emergency_incident_event_incident_id_emergency_incident"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_incident_event")),
        sa.UniqueConstraint(
            "incident_id", "seq", name=op.f("uq_emergency_incident_event_incident_id")
        ),
    )
    op.create_index(
        op.f("ix_emergency_incident_event_incident_id"),
        "emergency_incident_event",
        ["incident_id"],
        unique=False,
    )
    op.create_table(
        "emergency_incident_task",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("jurisdiction_code", sa.String(length=6), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("category_code", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("work_order_id", sa.Uuid(), nullable=True),
        sa.Column("work_order_number", sa.String(length=32), nullable=True),
        sa.Column("work_order_state", sa.String(length=20), nullable=True),
        sa.Column("work_order_label", sa.String(length=40), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["emergency_incident.id"],
            name=op.f("fk_emergency_incident_task_incident_id_emergency_incident"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_incident_task")),
    )
    op.create_index(
        op.f("ix_emergency_incident_task_incident_id"),
        "emergency_incident_task",
        ["incident_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_emergency_incident_task_jurisdiction_code"),
        "emergency_incident_task",
        ["jurisdiction_code"],
        unique=False,
    )
    op.create_index(
        op.f("ix_emergency_incident_task_work_order_id"),
        "emergency_incident_task",
        ["work_order_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_emergency_incident_task_work_order_id"), table_name="emergency_incident_task"
    )
    op.drop_index(
        op.f("ix_emergency_incident_task_jurisdiction_code"), table_name="emergency_incident_task"
    )
    op.drop_index(
        op.f("ix_emergency_incident_task_incident_id"), table_name="emergency_incident_task"
    )
    op.drop_table("emergency_incident_task")
    op.drop_index(
        op.f("ix_emergency_incident_event_incident_id"), table_name="emergency_incident_event"
    )
    op.drop_table("emergency_incident_event")
    op.drop_index(
        op.f("ix_emergency_handover_event_handover_id"), table_name="emergency_handover_event"
    )
    op.drop_table("emergency_handover_event")
    op.drop_index(op.f("ix_emergency_incident_state"), table_name="emergency_incident")
    op.drop_index(op.f("ix_emergency_incident_lead_jurisdiction"), table_name="emergency_incident")
    op.drop_table("emergency_incident")
    op.drop_index(op.f("ix_emergency_handover_state"), table_name="emergency_handover")
    op.drop_index(
        op.f("ix_emergency_handover_sender_jurisdiction"), table_name="emergency_handover"
    )
    op.drop_index(
        op.f("ix_emergency_handover_receiver_jurisdiction"), table_name="emergency_handover"
    )
    op.drop_index(op.f("ix_emergency_handover_owner_jurisdiction"), table_name="emergency_handover")
    op.drop_index(op.f("ix_emergency_handover_incident_id"), table_name="emergency_handover")
    op.drop_table("emergency_handover")
