"""Incident data access."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit.queries import record_event
from portal.clock import clock_time
from portal.elections.lifecycle import lock_election
from portal.errors import Conflict, NotFound
from portal.models import REPORTER, Election, Incident, Precinct, User
from portal.signals import incident_changed

FEED_SIZE = 15


async def election_taking_incidents(session: AsyncSession, election_id: int) -> Election:
    """The election, locked against a status move for this transaction, if it takes incidents."""
    election = await lock_election(session, election_id)
    if election.status == "certified":
        raise Conflict(f"{election.name} is certified: nothing in it can be changed.")
    if election.status == "draft":
        raise Conflict(f"{election.name} is a draft: incidents are reported once it is open.")
    return election


async def report_incident(
    session: AsyncSession,
    *,
    actor: User,
    election_id: int,
    precinct_id: int | None,
    state_voter_id: str | None,
    body: str,
) -> Incident:
    await election_taking_incidents(session, election_id)
    incident = Incident(
        election_id=election_id,
        precinct_id=precinct_id,
        state_voter_id=state_voter_id or None,
        body=body,
        reported_by_id=actor.id,
    )
    session.add(incident)
    await _store_audited(
        session,
        incident,
        actor=actor,
        action="report",
        after={
            "election_id": election_id,
            "precinct_id": precinct_id,
            "state_voter_id": state_voter_id,
            "body": body,
        },
    )
    return incident


async def resolve_incident(
    session: AsyncSession, *, actor: User, election_id: int, incident_id: int
) -> Incident:
    await election_taking_incidents(session, election_id)
    incident = await session.get(Incident, incident_id, with_for_update=True)
    if incident is None or incident.election_id != election_id:
        raise NotFound("incident", "No such incident in this election.")
    if incident.status == "resolved":  # resolved a moment ago by someone else: nothing to record
        who = await session.get(User, incident.resolved_by_id)
        at = f" at {clock_time(incident.resolved_at, seconds=True)}" if incident.resolved_at else ""
        raise Conflict(
            f"Incident #{incident.id} was already resolved by {who.display_name if who else 'a former user'}"
            f"{at}."
        )
    incident.status, incident.resolved_by_id, incident.resolved_at = "resolved", actor.id, datetime.now(UTC)
    await _store_audited(
        session,
        incident,
        actor=actor,
        action="resolve",
        before={"status": "open"},
        after={"status": "resolved"},
    )
    return incident


async def _store_audited(
    session: AsyncSession, incident: Incident, *, actor: User, action: str, **change
) -> None:
    """Store a reported or resolved incident, tell its election's live panels, and audit it
    (`change`: its before and after)."""
    await session.flush()
    await incident_changed.send_async(session, election_id=incident.election_id)
    await record_event(
        session, actor=actor, action=action, entity="incident", entity_id=incident.id, **change
    )


async def incident_feed(session: AsyncSession, election_id: int, limit: int = FEED_SIZE) -> list[tuple]:
    """Open incidents first, newest first, then recently resolved: (incident, precinct code, reporter)."""
    rows = await session.execute(
        select(Incident, Precinct.code, REPORTER.display_name)
        .outerjoin(Precinct, Precinct.id == Incident.precinct_id)
        .join(REPORTER, REPORTER.id == Incident.reported_by_id)
        .where(Incident.election_id == election_id)
        .order_by((Incident.status == "open").desc(), Incident.created_at.desc(), Incident.id.desc())
        .limit(limit)
    )
    return [tuple(r) for r in rows.all()]


OPEN_LIST_SIZE = 100


async def open_incidents(session: AsyncSession, election_id: int, limit: int = OPEN_LIST_SIZE) -> list[tuple]:
    """Open incidents, newest first (the resolve list and the dashboard): (incident, precinct code,
    reporter)."""
    rows = await session.execute(
        select(Incident, Precinct.code, REPORTER.display_name)
        .outerjoin(Precinct, Precinct.id == Incident.precinct_id)
        .join(REPORTER, REPORTER.id == Incident.reported_by_id)
        .where(Incident.election_id == election_id, Incident.status == "open")
        .order_by(Incident.created_at.desc(), Incident.id.desc())
        .limit(limit)
    )
    return [tuple(r) for r in rows.all()]


async def count_open_incidents(session: AsyncSession, election_id: int) -> int:
    open_ones = select(func.count()).where(Incident.election_id == election_id, Incident.status == "open")
    return (await session.execute(open_ones)).scalar_one()


async def incident_panels(session: AsyncSession, election_id: int) -> dict:
    """What the incident panels show (the live feed, the resolve list, the dashboard's summary): the
    feed, the open incidents and how many there are."""
    return {
        "feed": await incident_feed(session, election_id),
        "open_list": await open_incidents(session, election_id),
        "open_count": await count_open_incidents(session, election_id),
        "election_id": election_id,
    }
