"""blind re-keys that did not match a return (which fields, what was keyed, by whom)

Revision ID: 0013
Revises: 0012
Created: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "return_rekey",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("return_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("keyed_by_id", sa.Integer(), nullable=False),
        sa.Column("keyed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("figures", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("fields", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.CheckConstraint("attempt >= 1", name=op.f("ck_return_rekey_attempt")),
        sa.ForeignKeyConstraint(
            ["keyed_by_id"], ["user_account.id"], name=op.f("fk_return_rekey_keyed_by_id_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["return_id"],
            ["precinct_return.id"],
            name=op.f("fk_return_rekey_return_id_precinct_return"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_return_rekey")),
        sa.UniqueConstraint("return_id", "attempt", name="uq_return_rekey_attempt"),
    )


def downgrade() -> None:
    op.drop_table("return_rekey")
