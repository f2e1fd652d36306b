"""The audit trail listens to the domain signals whose change a write does not record itself: the
event is recorded in the sender's transaction (the session is the signal's sender), so it is
appended when that commits and never if it rolls back."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from portal import signals
from portal.audit.queries import record_event


async def election_status_changed(session: AsyncSession, *, election, before: str, actor) -> None:
    await record_event(
        session,
        actor=actor,
        action="status",
        entity="election",
        entity_id=election.id,
        before={"status": before},
        after={"status": election.status},
    )


def connect() -> None:
    """Listen to the domain (create_app; connecting again is a no-op)."""
    signals.election_status_changed.connect(election_status_changed)
