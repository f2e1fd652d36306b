"""The live panels listen to the domain: each signal names the panels its change moves, and they
are announced with pg_notify in the sender's own transaction (the session is the signal's sender),
so every worker hears of a change when it commits, and never of one that rolled back.

One write, one announcement: a receiver here is the only place a change is announced."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from portal import signals
from portal.live.hub import ALL, announce


async def election_status_changed(session: AsyncSession, *, election, **_) -> None:
    await announce(session, election.id, ALL)  # every panel says "unofficial", "certified", ...


async def election_methods_changed(session: AsyncSession, *, election_id: int, **_) -> None:
    await announce(session, election_id, ALL)  # every panel's split and "verified" count


async def turnout_changed(session: AsyncSession, *, election_id: int, **_) -> None:
    await announce(session, election_id, "turnout")


async def return_changed(session: AsyncSession, *, election_id: int, contest_id: int, **_) -> None:
    await announce(session, election_id, f"contest-{contest_id}", "reporting")


async def incident_changed(session: AsyncSession, *, election_id: int, **_) -> None:
    await announce(session, election_id, "incidents")


RECEIVERS = (
    (signals.election_status_changed, election_status_changed),
    (signals.election_methods_changed, election_methods_changed),
    (signals.check_in_recorded, turnout_changed),
    (signals.check_in_voided, turnout_changed),
    (signals.provisionals_decided, turnout_changed),
    (signals.return_saved, return_changed),
    (signals.return_verified, return_changed),
    (signals.incident_changed, incident_changed),
)


def connect() -> None:
    """Listen to the domain (create_app; connecting again is a no-op: blinker keeps one
    connection per receiver, so no change is announced twice)."""
    for signal, receiver in RECEIVERS:
        signal.connect(receiver)
