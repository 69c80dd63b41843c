"""medical: clearing with each side on its own node (issue 12)

- med_reservation gets the clearing period of its claim (and of its reversal) as the
  hospital's node assigned it: the insured node's side of the claim in the monthly
  statement (existing confirmed or reversed reservations were made on one node, where
  the settlement holds the same periods: backfilled from it);
- med_clearing_statement gets the outcome of comparing the two sides' claims
  (`reconciliation`: pending, agreed, differs, unreachable) and when;
- med_clearing_side: each side's count, amount and claim-list digest of a direction;
- med_clearing_difference: the claims on which the two sides disagree (open, resolved,
  carried into the next period).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("med_reservation") as batch:
        batch.add_column(sa.Column("period", sa.String(length=7), nullable=True))
        batch.add_column(sa.Column("reversal_period", sa.String(length=7), nullable=True))
        batch.create_index("ix_med_reservation_period", ["period"])
        batch.create_index("ix_med_reservation_reversal_period", ["reversal_period"])
    # A reservation settled on one node: its settlement (same institution code and
    # transaction id) holds the periods.
    for column in ("period", "reversal_period"):
        op.execute(
            f"UPDATE med_reservation SET {column} = ("
            f"SELECT s.{column} FROM med_settlement s "
            "JOIN med_institution i ON i.id = s.institution_id "
            "WHERE i.code = med_reservation.institution_code "
            "AND s.txn_id = med_reservation.txn_id) "
            "WHERE state IN ('confirmed', 'reversed')"
        )

    with op.batch_alter_table("med_clearing_statement") as batch:
        batch.add_column(
            sa.Column(
                "reconciliation", sa.String(length=12), server_default="pending", nullable=False
            )
        )
        batch.add_column(sa.Column("reconciled_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "med_clearing_side",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("statement_id", sa.Uuid(), nullable=False),
        sa.Column("debtor", sa.String(length=6), nullable=False),
        sa.Column("creditor", sa.String(length=6), nullable=False),
        sa.Column("holder", sa.String(length=10), nullable=False),
        sa.Column("claims", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["statement_id"],
            ["med_clearing_statement.id"],
            name=op.f("fk_med_clearing_side_statement_id_med_clearing_statement"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_med_clearing_side")),
        sa.UniqueConstraint(
            "statement_id", "debtor", "holder", name=op.f("uq_med_clearing_side_statement_id")
        ),
    )
    with op.batch_alter_table("med_clearing_side") as batch:
        batch.create_index(batch.f("ix_med_clearing_side_statement_id"), ["statement_id"])

    op.create_table(
        "med_clearing_difference",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("statement_id", sa.Uuid(), nullable=False),
        sa.Column("debtor", sa.String(length=6), nullable=False),
        sa.Column("creditor", sa.String(length=6), nullable=False),
        sa.Column("institution_code", sa.String(length=20), nullable=False),
        sa.Column("txn_id", sa.String(length=40), nullable=False),
        sa.Column("sign", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("insured_fund", sa.BigInteger(), nullable=True),
        sa.Column("treatment_fund", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=80), nullable=True),
        sa.Column("carried_to", sa.String(length=7), nullable=True),
        sa.ForeignKeyConstraint(
            ["statement_id"],
            ["med_clearing_statement.id"],
            name=op.f("fk_med_clearing_difference_statement_id_med_clearing_statement"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_med_clearing_difference")),
        sa.UniqueConstraint(
            "statement_id",
            "institution_code",
            "txn_id",
            "sign",
            name=op.f("uq_med_clearing_difference_statement_id"),
        ),
    )
    with op.batch_alter_table("med_clearing_difference") as batch:
        batch.create_index(batch.f("ix_med_clearing_difference_statement_id"), ["statement_id"])


def downgrade() -> None:
    op.drop_table("med_clearing_difference")
    op.drop_table("med_clearing_side")
    with op.batch_alter_table("med_clearing_statement") as batch:
        batch.drop_column("reconciled_at")
        batch.drop_column("reconciliation")
    with op.batch_alter_table("med_reservation") as batch:
        batch.drop_index("ix_med_reservation_reversal_period")
        batch.drop_index("ix_med_reservation_period")
        batch.drop_column("reversal_period")
        batch.drop_column("period")
