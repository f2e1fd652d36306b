"""Voter data access: one voter, its edits, its participation, and the streamed export."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit.queries import snapshot
from portal.editing import get_for_edit, insert_audited, save_changes
from portal.errors import FieldError, NotFound
from portal.models import CLERK, DECIDER, VOIDER, CheckIn, Election, Party, Precinct, User, Voter
from portal.precincts.queries import get_precinct
from portal.voters.search import VoterQuery, _filters, _sort_values, keyset, voter_rows

# A voter's own fields, in the voter table's order: what an edit audits and compares, what an import
# writes (and compares, the ID aside) and, with last_voted_on, what the demo copies in.
VOTER_FIELDS = (
    "state_voter_id",
    "first_name",
    "middle_name",
    "last_name",
    "date_of_birth",
    "birth_year",
    "address",
    "city",
    "postal_code",
    "precinct_id",
    "party_id",
    "status",
    "registration_date",
)
AUDITED = VOTER_FIELDS
# The export's header: names where the roll keeps ids, last name first (the roll's own order is
# VOTER_FIELDS).
EXPORT_COLUMNS = (
    "state_voter_id",
    "last_name",
    "first_name",
    "middle_name",
    "date_of_birth",
    "birth_year",
    "address",
    "city",
    "postal_code",
    "precinct",
    "party",
    "status",
    "registration_date",
    "last_voted_on",
)


@dataclass
class Participation:
    """One check-in of the voter's history, voided ones included (shown struck through)."""

    election: Election
    check_in: CheckIn
    clerk: str
    voided_by: str
    decided_by: str


@dataclass
class VoterDetail:
    voter: Voter
    precinct: Precinct
    party: Party | None
    history: list[Participation]
    updated_by: str


async def get_voter(session: AsyncSession, voter_id: int) -> Voter:
    voter = await session.get(Voter, voter_id)
    if voter is None:
        raise NotFound("voter")
    return voter


async def voter_detail(session: AsyncSession, voter_id: int) -> VoterDetail:
    voter = await get_voter(session, voter_id)
    precinct = await get_precinct(session, voter.precinct_id)
    party = await session.get(Party, voter.party_id) if voter.party_id else None
    # Participation: which elections the voter was issued a ballot in. Never how they voted:
    # check-ins are not linked to returns anywhere. Voided check-ins stay in the history.
    rows = await session.execute(
        select(Election, CheckIn, CLERK.display_name, VOIDER.display_name, DECIDER.display_name)
        .join(CheckIn, CheckIn.election_id == Election.id)
        .outerjoin(CLERK, CLERK.id == CheckIn.user_id)
        .outerjoin(VOIDER, VOIDER.id == CheckIn.voided_by_id)
        .outerjoin(DECIDER, DECIDER.id == CheckIn.decided_by_id)
        .where(CheckIn.voter_id == voter_id)
        .order_by(Election.election_date.desc(), CheckIn.checked_in_at.desc())
    )
    history = [
        Participation(election, check_in, name or "", voided or "", decided or "")
        for election, check_in, name, voided, decided in rows.tuples()
    ]
    editor = await session.get(User, voter.updated_by_id) if voter.updated_by_id else None
    return VoterDetail(voter, precinct, party, history, editor.display_name if editor else "")


async def precinct_id_for(session: AsyncSession, code: str) -> int:
    precinct_id = await session.scalar(select(Precinct.id).where(Precinct.code == code.strip().upper()))
    if precinct_id is None:
        raise FieldError("precinct_code", f"There is no precinct {code.strip().upper()}.")
    return precinct_id


async def _check_unique_id(session: AsyncSession, state_voter_id: str, except_id: int | None) -> None:
    query = select(Voter.id, Voter.last_name, Voter.first_name).where(Voter.state_voter_id == state_voter_id)
    if except_id is not None:
        query = query.where(Voter.id != except_id)
    clash = (await session.execute(query)).first()
    if clash:
        raise FieldError(
            "state_voter_id",
            f"Voter ID {state_voter_id} already belongs to {clash.first_name} {clash.last_name}.",
        )


@dataclass
class Match:
    """Another voter with the same name: `strong` when both full dates of birth agree, weaker when
    only the birth year does (one of the two is known by year only)."""

    voter: Voter
    strong: bool


async def possible_duplicates(
    session: AsyncSession,
    *,
    first_name: str,
    last_name: str,
    date_of_birth: date | None,
    birth_year: int,
    except_id: int | None = None,
) -> list[Match]:
    """Voters with the same name and date of birth, or birth year where a full date is missing
    (flagged for review, never merged). Strong matches first."""
    same_birth = Voter.birth_year == birth_year
    if date_of_birth is not None:
        same_birth &= or_(Voter.date_of_birth == date_of_birth, Voter.date_of_birth.is_(None))
    query = select(Voter).where(
        Voter.last_key == last_name.lower(), Voter.first_key == first_name.lower(), same_birth
    )
    if except_id is not None:
        query = query.where(Voter.id != except_id)
    found = (await session.scalars(query.order_by(Voter.date_of_birth.is_(None), Voter.id).limit(5))).all()
    return [Match(v, date_of_birth is not None and v.date_of_birth == date_of_birth) for v in found]


async def create_voter(session: AsyncSession, *, actor: User, data: dict) -> Voter:
    await _check_unique_id(session, data["state_voter_id"], None)
    voter = Voter(**data, updated_by_id=actor.id)
    taken = FieldError("state_voter_id", f"Voter ID {data['state_voter_id']} is already on the roll.")
    return await insert_audited(session, voter, actor=actor, entity="voter", fields=AUDITED, taken=taken)


async def update_voter(
    session: AsyncSession, *, actor: User, voter_id: int, seen_version: int | None, data: dict
) -> Voter:
    voter = await get_for_edit(session, Voter, voter_id, seen_version, noun="voter", fields=AUDITED)
    await _check_unique_id(session, data["state_voter_id"], voter_id)
    before = snapshot(voter, AUDITED)
    for name, value in data.items():
        setattr(voter, name, value)
    after = snapshot(voter, AUDITED)
    action = "remove" if after["status"] == "removed" and before["status"] != "removed" else "update"
    await save_changes(session, voter, before, after, actor=actor, entity="voter", action=action)
    return voter


# Export ------------------------------------------------------------------------------------------


async def export_chunk(
    session: AsyncSession, query: VoterQuery, after: list | None, size: int
) -> tuple[list[tuple], list | None]:
    """One chunk of the export in the search's order, keyset-paged: (rows in EXPORT_COLUMNS order,
    cursor for the next)."""
    conditions = await _filters(session, query, [])
    statement = voter_rows()
    if conditions:
        statement = statement.where(and_(*conditions))
    statement = keyset(statement, query.sort, after).limit(size)
    result = (await session.execute(statement)).all()
    rows = [
        (
            voter.state_voter_id,
            voter.last_name,
            voter.first_name,
            voter.middle_name,
            voter.date_of_birth,
            voter.birth_year,
            voter.address,
            voter.city,
            voter.postal_code,
            code,
            party or "",
            voter.status,
            voter.registration_date,
            voter.last_voted_on,
        )
        for voter, code, party in result
    ]
    cursor = _sort_values(result[-1][0], query.sort) if len(result) == size else None
    return rows, cursor
