"""Recording check-ins and reading turnout. A check-in says who was issued a ballot, never how
they voted: nothing here touches returns."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from werkzeug.exceptions import Conflict, NotFound

from portal.audit.queries import record_event
from portal.clock import local
from portal.elections.lifecycle import lock_election
from portal.live.hub import announce
from portal.models import CHECK_IN_METHODS, CheckIn, Election, ElectionPrecinct, Precinct, User, Voter
from portal.signals import check_in_recorded

METHOD_LABELS = {"in_person": "in person", "early": "early", "mail": "by mail", "provisional": "provisional"}
assert set(METHOD_LABELS) == set(CHECK_IN_METHODS)


class AlreadyCheckedIn(Conflict):
    pass


class CheckInRefused(Conflict):
    pass


@dataclass
class Turnout:
    precinct: Precinct
    checked_in: int
    registered: int

    @property
    def percent(self) -> float:
        return 100.0 * self.checked_in / self.registered if self.registered else 0.0


async def open_elections(session: AsyncSession) -> list[Election]:
    return list(
        (
            await session.scalars(
                select(Election).where(Election.status == "open").order_by(Election.election_date)
            )
        ).all()
    )


async def get_open_election(session: AsyncSession, election_id: int) -> Election:
    """The election, locked against a status move for this transaction, if it is open."""
    election = await lock_election(session, election_id)
    if election.status != "open":
        raise CheckInRefused(f"{election.name} is {election.status}: check-in happens only while it is open.")
    return election


async def check_ins_for(session: AsyncSession, election_id: int, voter_ids: list[int]) -> dict[int, CheckIn]:
    if not voter_ids:
        return {}
    rows = await session.scalars(
        select(CheckIn).where(CheckIn.election_id == election_id, CheckIn.voter_id.in_(voter_ids))
    )
    return {c.voter_id: c for c in rows}


async def describe_check_in(session: AsyncSession, check_in: CheckIn) -> str:
    precinct = await session.get(Precinct, check_in.precinct_id)
    clerk = await session.get(User, check_in.user_id)
    where = f"precinct {precinct.code}" + (f" ({precinct.polling_place})" if precinct.polling_place else "")
    return (
        f"checked in {local(check_in.checked_in_at):%H:%M %Z on %-d %b %Y} at {where}, "
        f"{METHOD_LABELS[check_in.method]}, by {clerk.display_name if clerk else 'a former user'}"
    )


async def record_check_in(
    session: AsyncSession, *, actor: User, election_id: int, voter_id: int, method: str
) -> CheckIn:
    """Issue a ballot. A second check-in of the voter in the election is refused with the first."""
    election = await get_open_election(session, election_id)
    voter = await session.get(Voter, voter_id)
    if voter is None:
        raise NotFound("No such voter.")
    if method not in CHECK_IN_METHODS:
        raise CheckInRefused("Choose how the ballot is issued.")
    participating = await session.scalar(
        select(ElectionPrecinct.precinct_id).where(
            ElectionPrecinct.election_id == election_id, ElectionPrecinct.precinct_id == voter.precinct_id
        )
    )
    name = f"{voter.first_name} {voter.last_name}"
    if method != "provisional":
        if voter.status != "active":
            raise CheckInRefused(
                f"{name} is {voter.status} on the roll: only a provisional ballot can be issued."
            )
        if participating is None:
            raise CheckInRefused(
                f"{name}'s precinct does not take part in {election.name}: only a provisional ballot."
            )
    inserted = await session.scalar(
        insert(CheckIn)
        .values(
            voter_id=voter_id,
            election_id=election_id,
            precinct_id=voter.precinct_id,
            method=method,
            user_id=actor.id,
        )
        .on_conflict_do_nothing(constraint="uq_check_in_voter_election")
        .returning(CheckIn.id)
    )
    if inserted is None:
        first = await session.scalar(
            select(CheckIn).where(CheckIn.voter_id == voter_id, CheckIn.election_id == election_id)
        )
        raise AlreadyCheckedIn(
            f"{name} was already {await describe_check_in(session, first)}. No second ballot."
        )
    # Not through the ORM: a check-in must not bump the voter's version under an open edit form.
    await session.execute(
        update(Voter)
        .where(Voter.id == voter_id)
        .values(last_voted_on=election.election_date)
        .execution_options(synchronize_session=False)
    )
    check_in = await session.get(CheckIn, inserted)
    await record_event(
        session,
        actor=actor,
        action="check_in",
        entity="voter",
        entity_id=voter_id,
        after={"election_id": election_id, "precinct_id": voter.precinct_id, "method": method},
    )
    await check_in_recorded.send_async(session, election_id=election_id, precinct_id=voter.precinct_id)
    await announce(session, election_id, "turnout")
    return check_in


async def precinct_turnout(session: AsyncSession, election_id: int, precinct_id: int) -> Turnout:
    precinct = await session.get(Precinct, precinct_id)
    checked_in = await session.scalar(
        select(func.count()).where(CheckIn.election_id == election_id, CheckIn.precinct_id == precinct_id)
    )
    registered = await session.scalar(
        select(func.count()).where(Voter.precinct_id == precinct_id, Voter.status == "active")
    )
    return Turnout(precinct, checked_in or 0, registered or 0)
