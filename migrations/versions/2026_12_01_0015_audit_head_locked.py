"""audit_head_locked(): take the chain's append lock and read its head in one round trip

Revision ID: 0015
Revises: 0014
Created: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # VOLATILE: each query in it takes a new snapshot, so the head is read *after* the lock is
    # granted and sees the event of whoever held it before (a single SELECT of both would read the
    # head from a snapshot taken before waiting, and fork the chain). The key is
    # portal.audit.queries.AUDIT_LOCK_KEY.
    op.execute(
        """
        CREATE FUNCTION audit_head_locked() RETURNS varchar
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(2047975633);
            RETURN (SELECT hash FROM audit_event ORDER BY id DESC LIMIT 1);
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION audit_head_locked()")
