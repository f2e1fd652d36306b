"""the roll's exact size, kept by statement triggers (an exact count(*) of a million voters costs 50-85 ms)

Revision ID: 0014
Revises: 0013
Created: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each statement that adds or deletes voters writes one row with its change, and folds into it the
# rows no other transaction holds (SKIP LOCKED), so the table stays a few rows long and writers never
# wait on each other (an import holding its row for 20 s blocks nobody). The roll's size is
# sum(delta), exact in every snapshot: a transaction's rows appear when it commits.
ADD = """
CREATE FUNCTION voter_count_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    change bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT count(*) INTO change FROM added_voters;
    ELSE
        SELECT -count(*) INTO change FROM removed_voters;
    END IF;
    IF change <> 0 THEN
        WITH folded AS (
            DELETE FROM voter_count
            WHERE ctid = ANY (ARRAY(SELECT ctid FROM voter_count FOR UPDATE SKIP LOCKED))
            RETURNING delta
        )
        INSERT INTO voter_count (delta) SELECT change + coalesce(sum(delta), 0) FROM folded;
    END IF;
    RETURN NULL;
END $$
"""
RESET = """
CREATE FUNCTION voter_count_reset() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM voter_count;
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.create_table("voter_count", sa.Column("delta", sa.BigInteger(), nullable=False))
    op.execute("INSERT INTO voter_count (delta) SELECT count(*) FROM voter")
    op.execute(ADD)
    op.execute(RESET)
    op.execute(
        "CREATE TRIGGER voter_count_added AFTER INSERT ON voter REFERENCING NEW TABLE AS added_voters "
        "FOR EACH STATEMENT EXECUTE FUNCTION voter_count_change()"
    )
    op.execute(
        "CREATE TRIGGER voter_count_removed AFTER DELETE ON voter REFERENCING OLD TABLE AS removed_voters "
        "FOR EACH STATEMENT EXECUTE FUNCTION voter_count_change()"
    )
    op.execute(
        "CREATE TRIGGER voter_count_truncated AFTER TRUNCATE ON voter "
        "FOR EACH STATEMENT EXECUTE FUNCTION voter_count_reset()"
    )


def downgrade() -> None:
    for trigger in ("voter_count_added", "voter_count_removed", "voter_count_truncated"):
        op.execute(f"DROP TRIGGER {trigger} ON voter")
    op.execute("DROP FUNCTION voter_count_change()")
    op.execute("DROP FUNCTION voter_count_reset()")
    op.drop_table("voter_count")
