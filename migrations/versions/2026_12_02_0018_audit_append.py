"""audit_append(events): a transaction's audit events appended to the chain in one round trip

Revision ID: 0018
Revises: 0017
Created: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The time as Python's datetime.isoformat() writes it in UTC (the hash covers this text):
    # microseconds only when there are some.
    op.execute(
        """
        CREATE FUNCTION audit_time_text(at timestamptz) RETURNS text
        LANGUAGE sql STABLE AS $$
            SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
                || CASE WHEN date_part('microseconds', at)::bigint % 1000000 <> 0
                        THEN '.' || to_char(at AT TIME ZONE 'UTC', 'US') ELSE '' END
                || '+00:00'
        $$
        """
    )
    # Each event comes with its canonical JSON in three pieces around the two values only known
    # under the lock, the time and the previous hash (portal.audit.queries.canonical_pieces): the
    # lock, the head, the hashes and the rows in one statement, so the lock is held for this and the
    # COMMIT only, not for round trips that wait for a busy worker. VOLATILE and plpgsql: the head
    # is read after the lock is granted (see audit_head_locked, migration 0015). The lock key is
    # portal.audit.queries.AUDIT_LOCK_KEY.
    op.execute(
        """
        CREATE FUNCTION audit_append(events jsonb) RETURNS void
        LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            prev varchar;
            at timestamptz;
            at_text text;
            event jsonb;
            digest varchar;
        BEGIN
            -- (A transaction that keeps one snapshot would read the head as it was before the
            -- lock was granted, and fork the chain.)
            IF current_setting('transaction_isolation') <> 'read committed' THEN
                RAISE EXCEPTION 'audit events are appended in READ COMMITTED transactions only';
            END IF;
            PERFORM pg_advisory_xact_lock(2047975633);
            prev := COALESCE((SELECT hash FROM audit_event ORDER BY id DESC LIMIT 1), repeat('0', 64));
            at := clock_timestamp();
            at_text := audit_time_text(at);
            FOR event IN SELECT value FROM jsonb_array_elements(events) LOOP
                digest := encode(sha256(convert_to(
                    (event->>'head') || at_text || (event->>'middle') || prev || (event->>'tail'),
                    'UTF8')), 'hex');
                INSERT INTO audit_event
                    (created_at, user_id, username, action, entity, entity_id, before, after,
                     prev_hash, hash)
                VALUES (at, (event->>'user_id')::int, event->>'username', event->>'action',
                        event->>'entity', event->>'entity_id', event->'before', event->'after',
                        prev, digest);
                prev := digest;
            END LOOP;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION audit_append(jsonb)")
    op.execute("DROP FUNCTION audit_time_text(timestamptz)")
