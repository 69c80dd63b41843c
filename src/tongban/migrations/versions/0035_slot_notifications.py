"""notifications: the message centre (站内信) and its outbound channels (issue 13)

- notify_message: one message to one account (unique per account and step: dedupe_key),
  indexed for the header's unread count (account_id, read_at) and the inbox's pages
  (account_id, created_at);
- notify_contact: an account's e-mail address and mobile number and the channels it chose;
- notify_delivery: the durable outbox of deliveries over those channels, retried with
  backoff by the worker until sent (due index: state, next_attempt_at).

Revision ID: 0035
Revises: 0034
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0035"
down_revision: str | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notify_message",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("topic", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=300), nullable=True),
        sa.Column("record_kind", sa.String(length=40), nullable=True),
        sa.Column("record_id", sa.Uuid(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=160), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_notify_message_account_id_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_message")),
        sa.UniqueConstraint("account_id", "dedupe_key", name=op.f("uq_notify_message_account_id")),
    )
    op.create_index(
        "ix_notify_message_unread", "notify_message", ["account_id", "read_at"], unique=False
    )
    op.create_index(
        "ix_notify_message_inbox", "notify_message", ["account_id", "created_at"], unique=False
    )
    op.create_table(
        "notify_contact",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("by_email", sa.Boolean(), nullable=False),
        sa.Column("by_sms", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_notify_contact_account_id_account")
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_notify_contact")),
    )
    op.create_table(
        "notify_delivery",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["notify_message.id"],
            name=op.f("fk_notify_delivery_message_id_notify_message"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_delivery")),
    )
    op.create_index(
        op.f("ix_notify_delivery_message_id"), "notify_delivery", ["message_id"], unique=False
    )
    op.create_index(
        "ix_notify_delivery_due", "notify_delivery", ["state", "next_attempt_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_notify_delivery_due", table_name="notify_delivery")
    op.drop_index(op.f("ix_notify_delivery_message_id"), table_name="notify_delivery")
    op.drop_table("notify_delivery")
    op.drop_table("notify_contact")
    op.drop_index("ix_notify_message_inbox", table_name="notify_message")
    op.drop_index("ix_notify_message_unread", table_name="notify_message")
    op.drop_table("notify_message")
