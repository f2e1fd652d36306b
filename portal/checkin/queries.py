"""Recording check-ins and reading turnout. A check-in says who was issued a ballot, never how
they voted: nothing here touches returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit.queries import record_event
from portal.clock import local
from portal.elections.lifecycle import lock_election
from portal.elections.queries import get_election
from portal.errors import Conflict, NotAllowed, NotFound
from portal.formatting import number
from portal.models import (
    CHECK_IN_METHODS,
    CheckIn,
    Election,
    ElectionPrecinct,
    Precinct,
    User,
    Voter,
)
from portal.precincts.queries import get_precinct
from portal.signals import check_in_recorded, check_in_voided
from portal.tally.queries import Turnout, count_check_ins, live_check_in
from portal.voters import counts as roll

METHOD_LABELS = {"in_person": "in person", "early": "early", "mail": "by mail", "provisional": "provisional"}
assert set(METHOD_LABELS) == set(CHECK_IN_METHODS)


class AlreadyCheckedIn(Conflict):
    pass


class CheckInRefused(Conflict):
    pass


class VoidRefused(Conflict):
    pass


class NotYoursToVoid(NotAllowed):
    pass


VOID_REASON_MAX = 300


@dataclass
class PrecinctTurnout(Turnout):
    """One precinct's turnout, as the desk shows it."""

    precinct: Precinct | None = None


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
        select(CheckIn).where(
            CheckIn.election_id == election_id, CheckIn.voter_id.in_(voter_ids), live_check_in()
        )
    )
    return {c.voter_id: c for c in rows}


async def describe_check_in(
    session: AsyncSession, check_in: CheckIn, *, precinct: Precinct | None = None, clerk: User | None = None
) -> str:
    """A check-in in words: "checked in 07:15 EST on 3 Nov 2026 at precinct 101-A (Town Hall), in
    person, by Pat Clerk". `precinct` and `clerk`, when the caller holds them, are not read again."""
    if precinct is None or precinct.id != check_in.precinct_id:
        precinct = await get_precinct(session, check_in.precinct_id)
    if clerk is None or clerk.id != check_in.user_id:
        clerk = await session.get(User, check_in.user_id)
    where = f"precinct {precinct.code}" + (f" ({precinct.polling_place})" if precinct.polling_place else "")
    status = f" ({check_in.provisional_status})" if check_in.provisional_status else ""
    return (
        f"checked in {local(check_in.checked_in_at):%H:%M %Z on %-d %b %Y} at {where}, "
        f"{METHOD_LABELS[check_in.method]}{status}, by {clerk.display_name if clerk else 'a former user'}"
    )


async def describe_check_ins(session: AsyncSession, found: dict[int, CheckIn]) -> dict[int, str]:
    """`describe_check_in` for the desk's results at once: their precincts and clerks read in two
    queries, not two per voter (36-38 statements for a search where 4 voters in 5 had voted)."""
    precincts = (
        await session.scalars(
            select(Precinct).where(Precinct.id.in_({c.precinct_id for c in found.values()}))
        )
    ).all()
    clerks = (
        await session.scalars(select(User).where(User.id.in_({c.user_id for c in found.values()})))
    ).all()
    described = {vid: await describe_check_in(session, c) for vid, c in found.items()}  # (from the session)
    del precincts, clerks  # held until here: the session's identity map keeps only weak references
    return described


async def record_check_in(
    session: AsyncSession, *, actor: User, election_id: int, voter_id: int, method: str
) -> CheckIn:
    """Issue a ballot. A second check-in of the voter in the election is refused with the first."""
    election = await get_open_election(session, election_id)
    # The voter and whether their precinct takes part, in one round trip.
    found = (
        await session.execute(
            select(
                Voter,
                select(ElectionPrecinct.precinct_id)
                .where(
                    ElectionPrecinct.election_id == election_id,
                    ElectionPrecinct.precinct_id == Voter.precinct_id,
                )
                .exists(),
            ).where(Voter.id == voter_id)
        )
    ).first()
    if found is None:
        raise NotFound("voter")
    voter, participating = found
    if method not in CHECK_IN_METHODS:
        raise CheckInRefused("Choose how the ballot is issued.")
    name = f"{voter.first_name} {voter.last_name}"
    if method != "provisional":
        if voter.status != "active":
            raise CheckInRefused(
                f"{name} is {voter.status} on the roll: only a provisional ballot can be issued."
            )
        if not participating:
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
            provisional_status="pending" if method == "provisional" else None,
        )
        .on_conflict_do_nothing(
            index_elements=[CheckIn.voter_id, CheckIn.election_id], index_where=live_check_in()
        )
        .returning(CheckIn.id)
    )
    if inserted is None:
        first = await session.scalar(
            select(CheckIn).where(
                CheckIn.voter_id == voter_id, CheckIn.election_id == election_id, live_check_in()
            )
        )
        if first is None:  # the other check-in was voided since: still not this one
            raise AlreadyCheckedIn(f"{name} was already checked in. No second ballot.")
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
    check_in = await session.get_one(CheckIn, inserted)  # inserted above, in this transaction
    await record_event(
        session,
        actor=actor,
        action="check_in",
        entity="voter",
        entity_id=voter_id,
        after={"election_id": election_id, "precinct_id": voter.precinct_id, "method": method},
    )
    await check_in_recorded.send_async(session, election_id=election_id, precinct_id=voter.precinct_id)
    return check_in


async def precinct_turnout(session: AsyncSession, election_id: int, precinct_id: int) -> PrecinctTurnout:
    """The precinct's turnout at the desk: live check-ins, rejected provisional ballots left out."""
    precinct = await get_precinct(session, precinct_id)
    counts = await count_check_ins(session, election_id, precinct_id)
    registered = await session.scalar(select(roll.active_voters()).where(roll.PRECINCT == precinct_id))  # noqa: SIM300
    return PrecinctTurnout(counts, registered or 0, precinct=precinct)


def clean_void_reason(raw: str | None) -> str:
    """The reason for a void: required, one line of plain text (markup is just text), length-limited."""
    reason = " ".join((raw or "").split())
    if not reason:
        raise VoidRefused("Say why the check-in is voided: the reason is required. Nothing was changed.")
    if len(reason) > VOID_REASON_MAX:
        raise VoidRefused(
            f"The reason is {number(len(reason))} characters long; keep it within {VOID_REASON_MAX}. "
            "Nothing was changed."
        )
    return reason


async def refuse_missing_check_in(session: AsyncSession, election_id: int, voter_id: int) -> NoReturn:
    """There is no live check-in to void: say who voided the last one, when and why, if anyone."""
    voided = await session.scalar(
        select(CheckIn)
        .where(CheckIn.voter_id == voter_id, CheckIn.election_id == election_id)
        .order_by(CheckIn.voided_at.desc())
        .limit(1)
    )
    if voided is None:
        raise NotFound("check-in", "The voter has no check-in in this election.")
    if voided.voided_at is None:  # checked in again since the void was asked for
        raise VoidRefused("The voter was checked in again meanwhile: reload the page. Nothing was changed.")
    raise VoidRefused(
        f"This check-in was already voided by {await _user_name(session, voided.voided_by_id)} "
        f"at {local(voided.voided_at):%H:%M %Z on %-d %b %Y} (“{voided.void_reason}”). Nothing was changed."
    )


async def _user_name(session: AsyncSession, user_id: int | None) -> str:
    user = await session.get(User, user_id) if user_id else None
    return user.display_name if user else "a former user"


async def void_check_in(
    session: AsyncSession,
    *,
    actor: User,
    election_id: int,
    voter_id: int,
    reason: str,
    clerk_window: timedelta,
) -> CheckIn:
    """Void the voter's live check-in in the election, so they can be checked in again.

    A clerk voids only their own check-in, within `clerk_window` of making it; a manager or an
    admin any, until the election closes. Voided twice, late or closed: refused, nothing stored."""
    election = await lock_election(session, election_id)
    if election.status != "open":
        raise VoidRefused(
            f"{election.name} is {election.status}: check-ins can be voided only while it is open."
        )
    reason = clean_void_reason(reason)
    check_in = await session.scalar(
        select(CheckIn)
        .where(CheckIn.voter_id == voter_id, CheckIn.election_id == election_id, live_check_in())
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if check_in is None:
        await refuse_missing_check_in(session, election_id, voter_id)
    if actor.role == "clerk":
        if check_in.user_id != actor.id:
            raise NotYoursToVoid(
                f"This check-in was made by {await _user_name(session, check_in.user_id)}: a clerk voids "
                "only their own. Ask a manager. Nothing was changed."
            )
        if await database_now(session) - check_in.checked_in_at > clerk_window:
            minutes = int(clerk_window.total_seconds() // 60)
            raise VoidRefused(
                f"A clerk can void a check-in within {minutes} minutes of making it; this one was made at "
                f"{local(check_in.checked_in_at):%H:%M %Z}. Ask a manager. Nothing was changed."
            )
    before = {
        "election_id": election_id,
        "precinct_id": check_in.precinct_id,
        "method": check_in.method,
        "checked_in_at": check_in.checked_in_at,
        "provisional_status": check_in.provisional_status,
    }
    voided_id = await session.scalar(
        update(CheckIn)
        .where(CheckIn.id == check_in.id, live_check_in())
        .values(voided_at=func.now(), voided_by_id=actor.id, void_reason=reason)
        .returning(CheckIn.id)
        .execution_options(synchronize_session=False)
    )
    if voided_id is None:  # cannot happen under the row lock; never report a void that did not happen
        raise VoidRefused("This check-in was voided meanwhile. Nothing was changed.")
    await session.refresh(check_in)
    await record_event(
        session,
        actor=actor,
        action="check_in_void",
        entity="voter",
        entity_id=voter_id,
        before=before,
        after={"voided": True, "reason": reason},
    )
    await check_in_voided.send_async(session, election_id=election_id, precinct_id=check_in.precinct_id)
    return check_in


async def database_now(session: AsyncSession):
    """The database's clock: check-in times are stamped by it, so windows are measured by it too."""
    return await session.scalar(select(func.now()))


def may_void(actor: User, check_in: CheckIn, now, clerk_window: timedelta) -> bool:
    """Whether the desk offers this user the void button (void_check_in decides for itself)."""
    if actor.role in ("admin", "manager"):
        return True
    return check_in.user_id == actor.id and now - check_in.checked_in_at <= clerk_window


async def live_check_in_of(
    session: AsyncSession, election_id: int, voter_id: int
) -> tuple[Election, CheckIn, Voter]:
    """The voter's live check-in in an open election, for the void form; refused as the void
    itself would be."""
    election = await get_election(session, election_id)
    if election.status != "open":
        raise VoidRefused(
            f"{election.name} is {election.status}: check-ins can be voided only while it is open."
        )
    voter = await session.get(Voter, voter_id)
    if voter is None:
        raise NotFound("voter")
    check_in = await session.scalar(
        select(CheckIn).where(
            CheckIn.voter_id == voter_id, CheckIn.election_id == election_id, live_check_in()
        )
    )
    if check_in is None:
        await refuse_missing_check_in(session, election_id, voter_id)
    return election, check_in, voter
