"""Cases review flow: the 差评整改 loop's item states.

A rectification item used to be `open` or `closed` (the authority answered and that was
the end). The loop now runs reply → the applicant's answer, and its states are
`open`, `replied`, `resolved`, `escalated`; an item closed before has no answer from its
applicant and is taken as resolved. The 提交审批 hand-off needs no column: its state
(`pending_approval`) fits the case's state column and its proposal is an event.

Revision ID: 0045
Revises: 0044
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0045"
down_revision: str | None = "0044"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("UPDATE rectification SET status = 'resolved' WHERE status = 'closed'")


def downgrade() -> None:
    op.execute(
        "UPDATE rectification SET status = 'closed' "
        "WHERE status IN ('replied', 'resolved', 'escalated')"
    )
