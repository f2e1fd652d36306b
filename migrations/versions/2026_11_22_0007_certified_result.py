"""registration frozen when the polls close (election_precinct.registered) and the canvass frozen
at certification (certified_result, append-only)

Revision ID: 0007
Revises: 0006
Created: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("election_precinct", sa.Column("registered", sa.Integer(), nullable=True))
    # Elections already past their polls: the best figure left is today's roll.
    op.execute(
        """
        UPDATE election_precinct ep SET registered = (
            SELECT count(*) FROM voter v WHERE v.precinct_id = ep.precinct_id AND v.status = 'active')
        FROM election e WHERE e.id = ep.election_id AND e.status IN ('closed', 'certified')
        """
    )
    op.create_table(
        "certified_result",
        sa.Column("election_id", sa.Integer(), nullable=False),
        sa.Column("certified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("certified_by_id", sa.Integer(), nullable=False),
        sa.Column("record", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["election_id"], ["election.id"], name=op.f("fk_certified_result_election_id_election")
        ),
        sa.ForeignKeyConstraint(
            ["certified_by_id"],
            ["user_account.id"],
            name=op.f("fk_certified_result_certified_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("election_id", name=op.f("pk_certified_result")),
    )
    op.execute(
        """
        CREATE FUNCTION certified_result_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'certified_result is frozen (% refused)', TG_OP;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER certified_result_frozen BEFORE UPDATE OR DELETE ON certified_result "
        "FOR EACH ROW EXECUTE FUNCTION certified_result_frozen()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER certified_result_frozen ON certified_result")
    op.execute("DROP FUNCTION certified_result_frozen()")
    op.drop_table("certified_result")
    op.drop_column("election_precinct", "registered")
