"""emergency: mutual aid (issue 19)

- emergency_request: a city's request for supplies to one or several jurisdictions
  (lines, urgency, destination, time targets), with the kernel's event counter and
  version guard; a copy on each asked jurisdiction's node (`replica`);
- emergency_commitment: an asked jurisdiction's answer (committed lines or a decline),
  unique per (request, giver), a copy on the requester's node;
- emergency_shipment: a consignment of a commitment (vehicle, coded boxes, receipt);
- their event tables (kernel EventRow: unique (record, seq), in the audit chain).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "emergency_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(length=24), nullable=False),
        sa.Column("requester_jurisdiction", sa.String(length=6), nullable=False),
        sa.Column("requester_city", sa.String(length=6), nullable=False),
        sa.Column("destination_code", sa.String(length=40), nullable=False),
        sa.Column("destination_name", sa.String(length=120), nullable=False),
        sa.Column("destination_address", sa.String(length=200), nullable=False),
        sa.Column("urgency", sa.String(length=12), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("contact", sa.String(length=120), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("respond_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("arrive_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("replica", sa.Boolean(), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("event_seq", sa.Integer(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["account.id"], name=op.f("fk_emergency_request_requested_by_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_request")),
        sa.UniqueConstraint("number", name=op.f("uq_emergency_request_number")),
    )
    op.create_index(
        op.f("ix_emergency_request_requester_city"),
        "emergency_request",
        ["requester_city"],
        unique=False,
    )
    op.create_index(
        op.f("ix_emergency_request_requester_jurisdiction"),
        "emergency_request",
        ["requester_jurisdiction"],
        unique=False,
    )
    op.create_index(
        op.f("ix_emergency_request_state"), "emergency_request", ["state"], unique=False
    )
    op.create_table(
        "emergency_commitment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("giver_jurisdiction", sa.String(length=6), nullable=False),
        sa.Column("giver_city", sa.String(length=6), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("dispatch_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("replica", sa.Boolean(), nullable=False),
        sa.Column("committed_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_seq", sa.Integer(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["committed_by"],
            ["account.id"],
            name=op.f("fk_emergency_commitment_committed_by_account"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["emergency_request.id"],
            name=op.f("fk_emergency_commitment_request_id_emergency_request"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_commitment")),
        sa.UniqueConstraint("number", name=op.f("uq_emergency_commitment_number")),
        sa.UniqueConstraint(
            "request_id", "giver_jurisdiction", name=op.f("uq_emergency_commitment_request_id")
        ),
    )
    op.create_index(
        op.f("ix_emergency_commitment_giver_jurisdiction"),
        "emergency_commitment",
        ["giver_jurisdiction"],
        unique=False,
    )
    op.create_index(
        op.f("ix_emergency_commitment_request_id"),
        "emergency_commitment",
        ["request_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_emergency_commitment_state"), "emergency_commitment", ["state"], unique=False
    )
    op.create_table(
        "emergency_request_event",
        sa.Column("request_id", sa.Uuid(), nullable=False),
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
            ["actor_id"], ["account.id"], name=op.f("fk_emergency_request_event_actor_id_account")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["emergency_request.id"],
            name=op.f("fk_emergency_request_event_request_id_emergency_request"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_request_event")),
        sa.UniqueConstraint(
            "request_id", "seq", name=op.f("uq_emergency_request_event_request_id")
        ),
    )
    op.create_index(
        op.f("ix_emergency_request_event_request_id"),
        "emergency_request_event",
        ["request_id"],
        unique=False,
    )
    op.create_table(
        "emergency_commitment_event",
        sa.Column("commitment_id", sa.Uuid(), nullable=False),
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
            ["actor_id"],
            ["account.id"],
            name=op.f("fk_emergency_commitment_event_actor_id_account"),
        ),
        sa.ForeignKeyConstraint(
            ["commitment_id"],
            ["emergency_commitment.id"],
            name=op.f("fk_emergency_commitment_event_commitment_id_emergency_commitment"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_commitment_event")),
        sa.UniqueConstraint(
            "commitment_id", "seq", name=op.f("uq_emergency_commitment_event_commitment_id")
        ),
    )
    op.create_index(
        op.f("ix_emergency_commitment_event_commitment_id"),
        "emergency_commitment_event",
        ["commitment_id"],
        unique=False,
    )
    op.create_table(
        "emergency_shipment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(length=24), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("commitment_id", sa.Uuid(), nullable=False),
        sa.Column("giver_jurisdiction", sa.String(length=6), nullable=False),
        sa.Column("requester_jurisdiction", sa.String(length=6), nullable=False),
        sa.Column("from_point_code", sa.String(length=40), nullable=False),
        sa.Column("from_point_name", sa.String(length=120), nullable=False),
        sa.Column("from_city", sa.String(length=6), nullable=False),
        sa.Column("destination_code", sa.String(length=40), nullable=False),
        sa.Column("vehicle", sa.String(length=40), nullable=False),
        sa.Column("driver", sa.String(length=80), nullable=False),
        sa.Column("contact", sa.String(length=120), nullable=False),
        sa.Column("boxes", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("arrive_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=True),
        sa.Column("receipt", sa.JSON(), nullable=True),
        sa.Column("receipt_note", sa.Text(), nullable=False),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("replica", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_seq", sa.Integer(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["commitment_id"],
            ["emergency_commitment.id"],
            name=op.f("fk_emergency_shipment_commitment_id_emergency_commitment"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["emergency_request.id"],
            name=op.f("fk_emergency_shipment_request_id_emergency_request"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_shipment")),
        sa.UniqueConstraint("number", name=op.f("uq_emergency_shipment_number")),
    )
    op.create_index(
        op.f("ix_emergency_shipment_commitment_id"),
        "emergency_shipment",
        ["commitment_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_emergency_shipment_giver_jurisdiction"),
        "emergency_shipment",
        ["giver_jurisdiction"],
        unique=False,
    )
    op.create_index(
        op.f("ix_emergency_shipment_request_id"), "emergency_shipment", ["request_id"], unique=False
    )
    op.create_index(
        op.f("ix_emergency_shipment_requester_jurisdiction"),
        "emergency_shipment",
        ["requester_jurisdiction"],
        unique=False,
    )
    op.create_index(
        op.f("ix_emergency_shipment_state"), "emergency_shipment", ["state"], unique=False
    )
    op.create_table(
        "emergency_shipment_event",
        sa.Column("shipment_id", sa.Uuid(), nullable=False),
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
            ["actor_id"], ["account.id"], name=op.f("fk_emergency_shipment_event_actor_id_account")
        ),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["emergency_shipment.id"],
            name=op.f("fk_emergency_shipment_event_shipment_id_emergency_shipment"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_shipment_event")),
        sa.UniqueConstraint(
            "shipment_id", "seq", name=op.f("uq_emergency_shipment_event_shipment_id")
        ),
    )
    op.create_index(
        op.f("ix_emergency_shipment_event_shipment_id"),
        "emergency_shipment_event",
        ["shipment_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_emergency_shipment_event_shipment_id"), table_name="emergency_shipment_event"
    )
    op.drop_table("emergency_shipment_event")
    op.drop_index(op.f("ix_emergency_shipment_state"), table_name="emergency_shipment")
    op.drop_index(
        op.f("ix_emergency_shipment_requester_jurisdiction"), table_name="emergency_shipment"
    )
    op.drop_index(op.f("ix_emergency_shipment_request_id"), table_name="emergency_shipment")
    op.drop_index(op.f("ix_emergency_shipment_giver_jurisdiction"), table_name="emergency_shipment")
    op.drop_index(op.f("ix_emergency_shipment_commitment_id"), table_name="emergency_shipment")
    op.drop_table("emergency_shipment")
    op.drop_index(
        op.f("ix_emergency_commitment_event_commitment_id"), table_name="emergency_commitment_event"
    )
    op.drop_table("emergency_commitment_event")
    op.drop_index(
        op.f("ix_emergency_request_event_request_id"), table_name="emergency_request_event"
    )
    op.drop_table("emergency_request_event")
    op.drop_index(op.f("ix_emergency_commitment_state"), table_name="emergency_commitment")
    op.drop_index(op.f("ix_emergency_commitment_request_id"), table_name="emergency_commitment")
    op.drop_index(
        op.f("ix_emergency_commitment_giver_jurisdiction"), table_name="emergency_commitment"
    )
    op.drop_table("emergency_commitment")
    op.drop_index(op.f("ix_emergency_request_state"), table_name="emergency_request")
    op.drop_index(
        op.f("ix_emergency_request_requester_jurisdiction"), table_name="emergency_request"
    )
    op.drop_index(op.f("ix_emergency_request_requester_city"), table_name="emergency_request")
    op.drop_table("emergency_request")
