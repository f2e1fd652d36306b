"""voter search: keyset indexes in the "C" collation, and state_voter_id in "C" for prefix search

Revision ID: 0003
Revises: 0002
Created: 2026-11-22 01:13:31.429596
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column(
        "voter",
        "state_voter_id",
        type_=sa.String(20, collation="C"),
        existing_type=sa.String(20),
        existing_nullable=False,
    )
    op.create_index(
        "ix_voter_address", "voter", [sa.literal_column('lower(address) COLLATE "C"'), "id"], unique=False
    )
    op.create_index(
        "ix_voter_name",
        "voter",
        [
            sa.literal_column('lower(last_name) COLLATE "C"'),
            sa.literal_column('lower(first_name) COLLATE "C"'),
            "id",
        ],
        unique=False,
    )
    op.create_index(
        "ix_voter_precinct_name",
        "voter",
        [
            "precinct_id",
            sa.literal_column('lower(last_name) COLLATE "C"'),
            sa.literal_column('lower(first_name) COLLATE "C"'),
            "id",
        ],
        unique=False,
    )
    op.create_index("ix_voter_registration", "voter", ["registration_date", "id"], unique=False)


def downgrade() -> None:
    op.alter_column(
        "voter",
        "state_voter_id",
        type_=sa.String(20),
        existing_type=sa.String(20, collation="C"),
        existing_nullable=False,
    )
    op.drop_index("ix_voter_registration", table_name="voter")
    op.drop_index("ix_voter_precinct_name", table_name="voter")
    op.drop_index("ix_voter_name", table_name="voter")
    op.drop_index("ix_voter_address", table_name="voter")
