"""fold ix_voter_precinct_active into ix_voter_precinct_name INCLUDE (status): one index fewer to
maintain on every insert; registered-voter counts stay index-only

Revision ID: 0006
Revises: 0005
Created: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index(
        "ix_voter_precinct_active", table_name="voter", postgresql_where=sa.text("status = 'active'")
    )
    op.drop_index("ix_voter_precinct_name", table_name="voter")
    op.create_index(
        "ix_voter_precinct_name",
        "voter",
        ["precinct_id", "last_key", "first_key", "id"],
        postgresql_include=["status"],
    )


def downgrade() -> None:
    op.drop_index("ix_voter_precinct_name", table_name="voter")
    op.create_index("ix_voter_precinct_name", "voter", ["precinct_id", "last_key", "first_key", "id"])
    op.create_index(
        "ix_voter_precinct_active", "voter", ["precinct_id"], postgresql_where=sa.text("status = 'active'")
    )
