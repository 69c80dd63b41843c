"""List indexes (issue 14, "lists stay fast at scale"): each list's WHERE and ORDER BY
served by one index, so that a page is an index range read, not a scan and a sort.

- ticket: staff order (due_at NULLS LAST, created_at, id), all of them (the operator)
  and a city's, a province's, an authority's; a reporter's newest first.
- service_case: the officer's queue (authority, deadline NULLS LAST, submitted_at, id);
  the resident's, the supervisor's and the window's lists newest first.
- med_settlement: a hospital's, and an agency's (treated or insured there), newest first.
- audit_entry: the reading page filtered by kind or actor, newest first; by time.

Revision ID: 0041
Revises: 0040
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0041"
down_revision: str | None = "0040"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_ticket_due_order", "ticket", ["due_at", "created_at", "id"]),
    ("ix_ticket_city_due", "ticket", ["city_code", "due_at", "created_at", "id"]),
    ("ix_ticket_jurisdiction_due", "ticket", ["jurisdiction_code", "due_at", "created_at", "id"]),
    ("ix_ticket_authority_due", "ticket", ["authority_id", "due_at", "created_at", "id"]),
    ("ix_ticket_reporter_created", "ticket", ["reporter_id", "created_at"]),
    ("ix_case_authority_queue", "service_case", ["authority_id", "deadline", "submitted_at", "id"]),
    ("ix_case_applicant_submitted", "service_case", ["applicant_id", "submitted_at"]),
    ("ix_case_competent_submitted", "service_case", ["competent_jurisdiction", "submitted_at"]),
    ("ix_case_receiving_submitted", "service_case", ["receiving_city", "submitted_at"]),
    ("ix_med_settlement_institution_at", "med_settlement", ["institution_id", "settled_at"]),
    ("ix_med_settlement_treatment_at", "med_settlement", ["treatment_jurisdiction", "settled_at"]),
    ("ix_med_settlement_insured_at", "med_settlement", ["insured_jurisdiction", "settled_at"]),
    ("ix_audit_entry_kind_seq", "audit_entry", ["kind", "seq"]),
    ("ix_audit_entry_actor_seq", "audit_entry", ["actor", "seq"]),
    ("ix_audit_entry_at", "audit_entry", ["at"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
