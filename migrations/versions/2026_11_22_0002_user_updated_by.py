"""user_account.updated_by_id: a refused stale edit of an account names who saved it

Revision ID: 0002
Revises: 0001
Created: 2026-11-22 01:10:30.649843
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("user_account", sa.Column("updated_by_id", sa.Integer(), nullable=True))
    op.create_foreign_key(
        op.f("fk_user_account_updated_by_id_user_account"),
        "user_account",
        "user_account",
        ["updated_by_id"],
        ["id"],
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_user_account_updated_by_id_user_account"), "user_account", type_="foreignkey")
    op.drop_column("user_account", "updated_by_id")
