"""check-in voids (who, when, why) and provisional adjudication (pending, accepted, rejected)

Revision ID: 0012
Revises: 0011
Created: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("check_in", sa.Column("provisional_status", sa.String(length=16), nullable=True))
    op.add_column("check_in", sa.Column("decided_by_id", sa.Integer(), nullable=True))
    op.add_column("check_in", sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("check_in", sa.Column("decision_reason", sa.String(length=120), nullable=True))
    op.add_column("check_in", sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("check_in", sa.Column("voided_by_id", sa.Integer(), nullable=True))
    op.add_column("check_in", sa.Column("void_reason", sa.String(length=300), nullable=True))
    op.create_foreign_key(
        op.f("fk_check_in_decided_by_id_user_account"), "check_in", "user_account", ["decided_by_id"], ["id"]
    )
    op.create_foreign_key(
        op.f("fk_check_in_voided_by_id_user_account"), "check_in", "user_account", ["voided_by_id"], ["id"]
    )
    # Nobody has decided the provisional ballots issued before this revision: they are pending (the
    # honest state), and a manager adjudicates them like any other before the election is certified.
    op.execute("UPDATE check_in SET provisional_status = 'pending' WHERE method = 'provisional'")
    op.create_check_constraint(
        "provisional_status", "check_in", "provisional_status IN ('pending', 'accepted', 'rejected')"
    )
    op.create_check_constraint(
        "provisional_status_method", "check_in", "(method = 'provisional') = (provisional_status IS NOT NULL)"
    )
    op.create_check_constraint(
        "decided_together",
        "check_in",
        "(decided_at IS NULL) = (decided_by_id IS NULL) AND (decided_at IS NULL) = (decision_reason IS NULL)",
    )
    op.create_check_constraint(
        "decided_unless_pending",
        "check_in",
        "(coalesce(provisional_status, 'pending') = 'pending') = (decided_at IS NULL)",
    )
    op.create_check_constraint(
        "voided_together",
        "check_in",
        "(voided_at IS NULL) = (voided_by_id IS NULL) AND (voided_at IS NULL) = (void_reason IS NULL)",
    )
    op.create_check_constraint(
        "void_reason_given", "check_in", "void_reason IS NULL OR length(btrim(void_reason)) > 0"
    )
    # One live check-in per voter and election; voided ones stay beside it as history.
    op.drop_constraint("uq_check_in_voter_election", "check_in", type_="unique")
    op.create_index(
        "uq_check_in_voter_election_live",
        "check_in",
        ["voter_id", "election_id"],
        unique=True,
        postgresql_where=sa.text("voided_at IS NULL"),
    )


def downgrade() -> None:
    # 0010 has no place for a voided check-in or a decision on a provisional ballot: refuse rather
    # than lose them (pending is what every provisional ballot was before, so those go quietly).
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM check_in WHERE voided_at IS NOT NULL "
        "OR provisional_status IN ('accepted', 'rejected')) THEN RAISE EXCEPTION "
        "'voided check-ins or decided provisional ballots are stored; 0010 cannot keep them'; END IF; END $$"
    )
    op.drop_index("uq_check_in_voter_election_live", table_name="check_in")
    op.create_unique_constraint("uq_check_in_voter_election", "check_in", ["voter_id", "election_id"])
    for name in (
        "void_reason_given",
        "voided_together",
        "decided_unless_pending",
        "decided_together",
        "provisional_status_method",
        "provisional_status",
    ):
        op.drop_constraint(op.f(f"ck_check_in_{name}"), "check_in", type_="check")
    op.drop_constraint(op.f("fk_check_in_voided_by_id_user_account"), "check_in", type_="foreignkey")
    op.drop_constraint(op.f("fk_check_in_decided_by_id_user_account"), "check_in", type_="foreignkey")
    for column in (
        "void_reason",
        "voided_by_id",
        "voided_at",
        "decision_reason",
        "decided_at",
        "decided_by_id",
        "provisional_status",
    ):
        op.drop_column("check_in", column)
