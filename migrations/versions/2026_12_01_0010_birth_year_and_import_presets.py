"""birth year always known, full date of birth optional; import layouts, code lists and saved presets

Revision ID: 0010
Revises: 0009
Created: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("voter", sa.Column("birth_year", sa.SmallInteger(), nullable=True))
    op.execute("UPDATE voter SET birth_year = extract(year FROM date_of_birth)")
    op.alter_column("voter", "birth_year", nullable=False)
    op.alter_column("voter", "date_of_birth", nullable=True)
    op.create_check_constraint("birth_year_plausible", "voter", "birth_year >= 1900")
    op.create_check_constraint(
        "birth_year_matches",
        "voter",
        "date_of_birth IS NULL OR birth_year = extract(year FROM date_of_birth)",
    )
    op.add_column(
        "import_job", sa.Column("has_header", sa.Boolean(), server_default=sa.text("true"), nullable=False)
    )
    op.add_column("import_job", sa.Column("preset", sa.String(length=80), server_default="", nullable=False))
    op.add_column(
        "import_job",
        sa.Column(
            "codes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )
    op.create_table(
        "import_preset",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("fields", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("date_format", sa.String(length=8), nullable=False),
        sa.Column(
            "codes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["user_account.id"], name=op.f("fk_import_preset_created_by_id_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_preset")),
        sa.UniqueConstraint("name", name=op.f("uq_import_preset_name")),
    )


def downgrade() -> None:
    op.drop_table("import_preset")
    op.drop_column("import_job", "codes")
    op.drop_column("import_job", "preset")
    op.drop_column("import_job", "has_header")
    # 0009 has no place for a voter known by birth year only: refuse rather than invent a date.
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM voter WHERE date_of_birth IS NULL) THEN RAISE EXCEPTION "
        "'voters with a birth year only are on the roll; 0009 needs a full date of birth'; END IF; END $$"
    )
    op.drop_constraint("ck_voter_birth_year_matches", "voter")
    op.drop_constraint("ck_voter_birth_year_plausible", "voter")
    op.alter_column("voter", "date_of_birth", nullable=False)
    op.drop_column("voter", "birth_year")
