"""the audit trail refuses TRUNCATE too (UPDATE and DELETE were refused row by row since 0001)

Revision ID: 0008
Revises: 0007
Created: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A row trigger never sees TRUNCATE; a statement trigger does. (The table's owner can still
    # drop the trigger: what proves the log whole is its head, anchored in reports and records.)
    op.execute(
        "CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER audit_event_no_truncate ON audit_event")
