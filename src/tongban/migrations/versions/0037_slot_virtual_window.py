"""virtualwindow: cross-province remote virtual window sessions (issue 16)

- vw_session: a session on the competent node (matter, competent authority, the clerk's
  jurisdiction/city/node and account reference, the digest of the session secret, state
  on the kernel's state machine, shared form, locked fields, identity check, the case it
  became), with the kernel's event counter and version guard;
- vw_session_event: its history (kernel EventRow: unique (session_id, seq), in the audit
  chain);
- vw_document: documents the clerk scanned during a session (an attachment of this node);
- vw_signal: transient WebRTC signalling between the two browsers;
- vw_ticket: on the clerk's node, the sessions its clerks run and their secrets.

Revision ID: 0037
Revises: 0036
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0037"
down_revision: str | None = "0036"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, nullable: bool = False) -> "sa.Column[Any]":
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "vw_session",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("matter_code", sa.String(length=40), nullable=False),
        sa.Column("competent_jurisdiction", sa.String(length=6), nullable=False),
        sa.Column("competent_city", sa.String(length=6), nullable=True),
        sa.Column("authority_id", sa.Uuid(), nullable=False),
        sa.Column("origin_jurisdiction", sa.String(length=6), nullable=False),
        sa.Column("origin_city", sa.String(length=6), nullable=False),
        sa.Column("origin_node", sa.String(length=64), nullable=True),
        sa.Column("clerk_ref", sa.String(length=64), nullable=False),
        sa.Column("clerk_name", sa.String(length=80), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("officer_id", sa.Uuid(), nullable=True),
        sa.Column("officer_name", sa.String(length=80), nullable=True),
        sa.Column("form", sa.JSON(), nullable=False),
        sa.Column("locked", sa.JSON(), nullable=False),
        sa.Column("identity_method", sa.String(length=30), nullable=True),
        sa.Column("applicant_name", sa.String(length=80), nullable=True),
        sa.Column("applicant_identifier", sa.String(length=24), nullable=True),
        sa.Column("identity_confirmed", sa.Boolean(), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=True),
        sa.Column("case_number", sa.String(length=32), nullable=True),
        _at("created_at"),
        _at("taken_at", True),
        _at("ended_at", True),
        sa.Column("event_seq", sa.Integer(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["matter_code"], ["matter.code"], name=op.f("fk_vw_session_matter_code_matter")
        ),
        sa.ForeignKeyConstraint(
            ["officer_id"], ["account.id"], name=op.f("fk_vw_session_officer_id_account")
        ),
        sa.ForeignKeyConstraint(
            ["authority_id"], ["authority.id"], name=op.f("fk_vw_session_authority_id_authority")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vw_session")),
        sa.UniqueConstraint("number", name=op.f("uq_vw_session_number")),
    )
    op.create_index(
        op.f("ix_vw_session_competent_jurisdiction"), "vw_session", ["competent_jurisdiction"]
    )
    op.create_index(op.f("ix_vw_session_state"), "vw_session", ["state"])
    op.create_index(op.f("ix_vw_session_authority_id"), "vw_session", ["authority_id"])
    op.create_table(
        "vw_ticket",
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("clerk_id", sa.Uuid(), nullable=False),
        sa.Column("matter_code", sa.String(length=40), nullable=False),
        sa.Column("competent_jurisdiction", sa.String(length=6), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("uploads", sa.JSON(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        _at("created_at"),
        sa.ForeignKeyConstraint(
            ["clerk_id"], ["account.id"], name=op.f("fk_vw_ticket_clerk_id_account")
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_vw_ticket")),
    )
    op.create_index(op.f("ix_vw_ticket_clerk_id"), "vw_ticket", ["clerk_id"])
    op.create_table(
        "vw_session_event",
        sa.Column("session_id", sa.Uuid(), nullable=False),
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
        _at("at"),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["account.id"], name=op.f("fk_vw_session_event_actor_id_account")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["vw_session.id"],
            name=op.f("fk_vw_session_event_session_id_vw_session"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vw_session_event")),
        sa.UniqueConstraint("session_id", "seq", name=op.f("uq_vw_session_event_session_id")),
    )
    op.create_index(op.f("ix_vw_session_event_session_id"), "vw_session_event", ["session_id"])
    op.create_table(
        "vw_signal",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("side", sa.String(length=10), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _at("at"),
        sa.ForeignKeyConstraint(
            ["session_id"], ["vw_session.id"], name=op.f("fk_vw_signal_session_id_vw_session")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vw_signal")),
    )
    op.create_index(op.f("ix_vw_signal_session_id"), "vw_signal", ["session_id"])
    op.create_table(
        "vw_document",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("attachment_id", sa.Uuid(), nullable=False),
        sa.Column("material_code", sa.String(length=40), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        _at("at"),
        sa.ForeignKeyConstraint(
            ["attachment_id"],
            ["attachment.id"],
            name=op.f("fk_vw_document_attachment_id_attachment"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["vw_session.id"], name=op.f("fk_vw_document_session_id_vw_session")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vw_document")),
    )
    op.create_index(op.f("ix_vw_document_session_id"), "vw_document", ["session_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_vw_document_session_id"), table_name="vw_document")
    op.drop_table("vw_document")
    op.drop_index(op.f("ix_vw_signal_session_id"), table_name="vw_signal")
    op.drop_table("vw_signal")
    op.drop_index(op.f("ix_vw_session_event_session_id"), table_name="vw_session_event")
    op.drop_table("vw_session_event")
    op.drop_index(op.f("ix_vw_ticket_clerk_id"), table_name="vw_ticket")
    op.drop_table("vw_ticket")
    op.drop_index(op.f("ix_vw_session_authority_id"), table_name="vw_session")
    op.drop_index(op.f("ix_vw_session_state"), table_name="vw_session")
    op.drop_index(op.f("ix_vw_session_competent_jurisdiction"), table_name="vw_session")
    op.drop_table("vw_session")
