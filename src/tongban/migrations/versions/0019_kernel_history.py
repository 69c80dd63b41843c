"""kernel history: audit entries are staged by writers and chained at commit (issue 11)

audit_pending holds the entries a writer's transaction staged without taking the chain's
head lock; they are chained (moved into audit_entry under the head lock) just before
that transaction commits, so the lock is held for the commit step only.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-28 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_pending",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=120), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("alg", sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_pending")),
    )


def downgrade() -> None:
    # Chain what is still staged before the table goes, so no entry is lost: an old
    # version of the code has no staging step.
    bind = op.get_bind()
    pending = bind.execute(
        sa.text("SELECT kind, subject, actor, body, alg FROM audit_pending ORDER BY id")
    ).all()
    if pending:
        from tongban.audit import hook

        for row in pending:
            hook.append(bind, row.kind, row.subject, row.actor, row.body, alg=row.alg)
    op.drop_table("audit_pending")
