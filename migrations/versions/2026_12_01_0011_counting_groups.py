"""counting groups: every election declares the voting methods it counts; returns are kept per method

Existing returns were one figure per precinct and contest, for every ballot. They move into the
election-day group, and an election that already has returns counts that group only: its precincts
report exactly as before (a manager can add the other methods while it is draft or open). An
election with no returns yet counts all four methods. Certified canvasses are frozen records
(format 1) and keep printing the same bytes; new certifications store format 2 (by method).

Revision ID: 0011
Revises: 0010
Created: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

METHODS = ("election_day", "early", "absentee", "provisional")


def upgrade() -> None:
    op.create_table(
        "counting_group",
        sa.Column("election_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "method IN (" + ", ".join(repr(m) for m in METHODS) + ")", name=op.f("ck_counting_group_method")
        ),
        sa.ForeignKeyConstraint(
            ["election_id"],
            ["election.id"],
            name=op.f("fk_counting_group_election_id_election"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("election_id", "method", name=op.f("pk_counting_group")),
    )
    op.execute(
        "INSERT INTO counting_group (election_id, method) "
        "SELECT e.id, m.method FROM election e CROSS JOIN "
        "unnest(ARRAY['election_day', 'early', 'absentee', 'provisional']) AS m(method) "
        "WHERE m.method = 'election_day' "
        "OR NOT EXISTS (SELECT 1 FROM precinct_return r WHERE r.election_id = e.id)"
    )
    op.add_column("precinct_return", sa.Column("method", sa.String(length=16), nullable=True))
    op.execute("UPDATE precinct_return SET method = 'election_day'")
    op.alter_column("precinct_return", "method", nullable=False)
    op.drop_constraint("uq_precinct_return_revision", "precinct_return", type_="unique")
    op.create_unique_constraint(
        "uq_precinct_return_revision",
        "precinct_return",
        ["election_id", "precinct_id", "contest_id", "method", "revision"],
    )
    op.create_foreign_key(
        "fk_precinct_return_counting_group",
        "precinct_return",
        "counting_group",
        ["election_id", "method"],
        ["election_id", "method"],
    )


def downgrade() -> None:
    bind = op.get_bind()
    split = bind.scalar(sa.text("SELECT count(*) FROM precinct_return WHERE method <> 'election_day'"))
    if split:
        raise RuntimeError(
            f"{split} returns are kept by a voting method other than election day; downgrading would "
            "merge or lose them. Nothing was changed."
        )
    op.drop_constraint("fk_precinct_return_counting_group", "precinct_return", type_="foreignkey")
    op.drop_constraint("uq_precinct_return_revision", "precinct_return", type_="unique")
    op.create_unique_constraint(
        "uq_precinct_return_revision",
        "precinct_return",
        ["election_id", "precinct_id", "contest_id", "revision"],
    )
    op.drop_column("precinct_return", "method")
    op.drop_table("counting_group")
