"""Contest and candidate data access. Every write goes through `election_for_write`, so a
certified election refuses everything and an open one refuses ballot changes."""

from __future__ import annotations

from typing import TypedDict, Unpack

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit.queries import record_event, snapshot
from portal.contests.bulk import parse_candidate_lines
from portal.editing import check_version, delete_audited, insert_audited, save_changes
from portal.elections.queries import ElectionLocked, election_for_write, participating_precinct_ids
from portal.errors import FieldError, NotFound
from portal.models import Candidate, Contest, ContestPrecinct, User

CONTEST_AUDITED = ("office_title", "vote_for", "ballot_order", "is_measure")
CANDIDATE_AUDITED = ("code", "ballot_name", "party_id", "ballot_order", "status", "write_in")
MEASURE_CHOICES = (("YES", "Yes"), ("NO", "No"))


class CandidateFields(TypedDict):
    """What a candidate's form sets, on a new candidate and on an edit."""

    code: str
    ballot_name: str
    party_id: int | None
    status: str
    write_in: bool


async def get_contest(session: AsyncSession, election_id: int, contest_id: int) -> Contest:
    contest = await session.get(Contest, contest_id)
    if contest is None or contest.election_id != election_id:
        raise NotFound("contest", "No such contest in this election.")
    return contest


async def get_candidate(session: AsyncSession, election_id: int, candidate_id: int) -> Candidate:
    candidate = await session.get(Candidate, candidate_id)
    if candidate is None or candidate.election_id != election_id:
        raise NotFound("candidate", "No such candidate in this election.")
    return candidate


async def contest_precinct_ids(session: AsyncSession, contest_id: int) -> list[int]:
    return list(
        (
            await session.scalars(
                select(ContestPrecinct.precinct_id).where(ContestPrecinct.contest_id == contest_id)
            )
        ).all()
    )


async def _qualified_count(session: AsyncSession, contest_id: int) -> int:
    return (
        await session.scalar(
            select(func.count()).where(Candidate.contest_id == contest_id, Candidate.status == "qualified")
        )
        or 0
    )


async def _code_taken(
    session: AsyncSession, election_id: int, code: str, except_id: int | None = None
) -> bool:
    query = select(Candidate.id).where(Candidate.election_id == election_id, Candidate.code == code)
    if except_id is not None:
        query = query.where(Candidate.id != except_id)
    return (await session.scalar(query)) is not None


async def _checked_precincts(
    session: AsyncSession, election_id: int, precinct_ids: list[int] | None
) -> list[int]:
    participating = set(await participating_precinct_ids(session, election_id))
    if precinct_ids is None:
        return sorted(participating)
    outside = set(precinct_ids) - participating
    if outside:
        raise FieldError("precincts", "Only precincts taking part in the election can be chosen.")
    if not precinct_ids:
        raise FieldError("precincts", "Choose at least one precinct.")
    return sorted(set(precinct_ids))


async def create_contest(
    session: AsyncSession,
    *,
    actor: User,
    election_id: int,
    office_title: str,
    vote_for: int,
    is_measure: bool,
    precinct_ids: list[int] | None,
) -> Contest:
    await election_for_write(session, election_id, ballot_change=True)
    precincts = await _checked_precincts(session, election_id, precinct_ids)
    last = select(func.coalesce(func.max(Contest.ballot_order), 0)).where(Contest.election_id == election_id)
    order = (await session.execute(last)).scalar_one()  # (an aggregate: always one row)
    contest = Contest(
        election_id=election_id,
        office_title=office_title,
        vote_for=1 if is_measure else vote_for,
        ballot_order=order + 1,
        is_measure=is_measure,
        updated_by_id=actor.id,
    )
    session.add(contest)
    await session.flush()
    session.add_all(ContestPrecinct(contest_id=contest.id, precinct_id=p) for p in precincts)
    if is_measure:
        for n, (suffix, name) in enumerate(MEASURE_CHOICES, start=1):
            session.add(
                Candidate(
                    contest_id=contest.id,
                    election_id=election_id,
                    code=f"Q{contest.id}-{suffix}",
                    ballot_name=name,
                    ballot_order=n,
                    updated_by_id=actor.id,
                )
            )
    await session.flush()
    await record_event(
        session,
        actor=actor,
        action="create",
        entity="contest",
        entity_id=contest.id,
        after={**snapshot(contest, CONTEST_AUDITED), "election_id": election_id, "precincts": len(precincts)},
    )
    return contest


async def update_contest(
    session: AsyncSession,
    *,
    actor: User,
    election_id: int,
    contest_id: int,
    seen_version: int | None,
    office_title: str,
    vote_for: int,
    precinct_ids: list[int] | None,
) -> Contest:
    election = await election_for_write(session, election_id)
    contest = await get_contest(session, election_id, contest_id)
    await session.refresh(contest, with_for_update=True)
    await check_version(session, contest, seen_version, noun="contest", fields=CONTEST_AUDITED)
    if contest.is_measure:
        vote_for = 1
    old_precincts = set(await contest_precinct_ids(session, contest_id))
    new_precincts = set(await _checked_precincts(session, election_id, precinct_ids))
    ballot_change = vote_for != contest.vote_for or new_precincts != old_precincts
    if ballot_change and election.status != "draft":
        raise ElectionLocked(
            f"{election.name} is {election.status}: vote-for and the precincts of a contest are "
            "fixed once the election opens; only the office title can be corrected."
        )
    qualified = await _qualified_count(session, contest_id)
    if not contest.is_measure and qualified and vote_for > qualified:
        raise FieldError(
            "vote_for",
            f"Vote for {vote_for} is more than the {qualified} qualified candidates of this contest.",
        )
    before = snapshot(contest, CONTEST_AUDITED)
    contest.office_title, contest.vote_for = office_title, vote_for
    after = snapshot(contest, CONTEST_AUDITED)
    if new_precincts != old_precincts:
        await session.execute(delete(ContestPrecinct).where(ContestPrecinct.contest_id == contest_id))
        session.add_all(ContestPrecinct(contest_id=contest_id, precinct_id=p) for p in new_precincts)
        before["precincts"], after["precincts"] = len(old_precincts), len(new_precincts)
    await save_changes(session, contest, before, after, actor=actor, entity="contest")
    return contest


async def delete_contest(session: AsyncSession, *, actor: User, election_id: int, contest_id: int) -> Contest:
    await election_for_write(session, election_id, ballot_change=True)
    contest = await get_contest(session, election_id, contest_id)
    also = {"election_id": election_id}
    await delete_audited(session, contest, actor=actor, entity="contest", fields=CONTEST_AUDITED, also=also)
    await _renumber_contests(session, election_id)
    return contest


async def _renumber(session: AsyncSession, model, parent_column, parent_id: int) -> list:
    """Number the rows under one parent 1..n in their ballot order (closing any gaps)."""
    rows = list(
        (
            await session.scalars(
                select(model).where(parent_column == parent_id).order_by(model.ballot_order, model.id)
            )
        ).all()
    )
    for n, row in enumerate(rows, start=1):
        row.ballot_order = n
    return rows


async def _renumber_contests(session: AsyncSession, election_id: int) -> list[Contest]:
    return await _renumber(session, Contest, Contest.election_id, election_id)


async def _renumber_candidates(session: AsyncSession, contest_id: int) -> list[Candidate]:
    return await _renumber(session, Candidate, Candidate.contest_id, contest_id)


def _swap(rows: list, index: int, direction: str) -> tuple | None:
    other = index - 1 if direction == "up" else index + 1
    if not 0 <= other < len(rows):
        return None
    a, b = rows[index], rows[other]
    a.ballot_order, b.ballot_order = b.ballot_order, a.ballot_order
    return a, b


async def move_contest(
    session: AsyncSession, *, actor: User, election_id: int, contest_id: int, direction: str
) -> None:
    await election_for_write(session, election_id, ballot_change=True)
    await get_contest(session, election_id, contest_id)
    contests = await _renumber_contests(session, election_id)
    await _move(session, actor, "contest", contests, contest_id, direction)


async def _move(session: AsyncSession, actor: User, entity: str, items: list, item_id: int, direction: str):
    """Swap the item with its neighbour on the ballot (if it has one that way), audited."""
    index = next(i for i, item in enumerate(items) if item.id == item_id)
    if _swap(items, index, direction):
        await session.flush()
        await record_event(
            session,
            actor=actor,
            action="reorder",
            entity=entity,
            entity_id=item_id,
            before={"ballot_order": index + 1},
            after={"ballot_order": items[index].ballot_order},
        )


async def move_candidate(
    session: AsyncSession, *, actor: User, election_id: int, candidate_id: int, direction: str
) -> None:
    await election_for_write(session, election_id, ballot_change=True)
    candidate = await get_candidate(session, election_id, candidate_id)
    candidates = await _renumber_candidates(session, candidate.contest_id)
    await _move(session, actor, "candidate", candidates, candidate_id, direction)


async def _last_ballot_order(session: AsyncSession, contest_id: int) -> int:
    last = select(func.coalesce(func.max(Candidate.ballot_order), 0)).where(
        Candidate.contest_id == contest_id
    )
    return (await session.execute(last)).scalar_one()  # (an aggregate: always one row)


async def create_candidate(
    session: AsyncSession,
    *,
    actor: User,
    election_id: int,
    contest_id: int,
    **fields: Unpack[CandidateFields],
) -> Candidate:
    await election_for_write(session, election_id, ballot_change=True)
    contest = await get_contest(session, election_id, contest_id)
    if contest.is_measure:
        raise FieldError("code", "A ballot measure has the fixed choices Yes and No.")
    code = fields["code"]
    if await _code_taken(session, election_id, code):
        raise FieldError("code", f"Code {code} is already used in this election.")
    order = await _last_ballot_order(session, contest_id) + 1
    candidate = Candidate(
        contest_id=contest_id, election_id=election_id, **fields, ballot_order=order, updated_by_id=actor.id
    )
    return await insert_audited(
        session,
        candidate,
        actor=actor,
        entity="candidate",
        fields=CANDIDATE_AUDITED,
        taken=FieldError("code", f"Code {code} is already used in this election."),
        also={"contest_id": contest_id},
    )


async def update_candidate(
    session: AsyncSession,
    *,
    actor: User,
    election_id: int,
    candidate_id: int,
    seen_version: int | None,
    **fields: Unpack[CandidateFields],
) -> Candidate:
    election = await election_for_write(session, election_id)
    candidate = await get_candidate(session, election_id, candidate_id)
    await session.refresh(candidate, with_for_update=True)
    await check_version(session, candidate, seen_version, noun="candidate", fields=CANDIDATE_AUDITED)
    contest = await get_contest(session, election_id, candidate.contest_id)
    code, write_in = fields["code"], fields["write_in"]
    if contest.is_measure and (code != candidate.code or write_in):
        raise FieldError("code", "The choices of a ballot measure are fixed; only their wording can change.")
    if (code != candidate.code or write_in != candidate.write_in) and election.status != "draft":
        raise ElectionLocked(
            f"{election.name} is {election.status}: a candidate's code and write-in flag are fixed once "
            "the election opens; name, party and status can be corrected."
        )
    if await _code_taken(session, election_id, code, except_id=candidate_id):
        raise FieldError("code", f"Code {code} is already used in this election.")
    before = snapshot(candidate, CANDIDATE_AUDITED)
    for name, value in fields.items():
        setattr(candidate, name, value)
    after = snapshot(candidate, CANDIDATE_AUDITED)
    await save_changes(session, candidate, before, after, actor=actor, entity="candidate")
    return candidate


async def delete_candidate(
    session: AsyncSession, *, actor: User, election_id: int, candidate_id: int
) -> Candidate:
    await election_for_write(session, election_id, ballot_change=True)
    candidate = await get_candidate(session, election_id, candidate_id)
    contest = await get_contest(session, election_id, candidate.contest_id)
    if contest.is_measure:
        raise ElectionLocked("The choices of a ballot measure are fixed: delete the measure instead.")
    await delete_audited(session, candidate, actor=actor, entity="candidate", fields=CANDIDATE_AUDITED)
    await _renumber_candidates(session, contest.id)
    return candidate


async def bulk_add_candidates(
    session: AsyncSession, *, actor: User, election_id: int, contest_id: int, text: str
) -> tuple[list[Candidate], list[str]]:
    """All lines or none: on any error nothing is added and the errors are returned."""
    await election_for_write(session, election_id, ballot_change=True)
    contest = await get_contest(session, election_id, contest_id)
    if contest.is_measure:
        return [], ["A ballot measure has the fixed choices Yes and No."]
    rows, errors = await parse_candidate_lines(session, election_id, text)
    if errors:
        return [], errors
    order = await _last_ballot_order(session, contest_id)
    added = []
    for n, row in enumerate(rows, start=1):
        candidate = Candidate(
            contest_id=contest_id,
            election_id=election_id,
            code=row.code,
            ballot_name=row.ballot_name,
            party_id=row.party_id,
            write_in=row.write_in,
            ballot_order=order + n,
            updated_by_id=actor.id,
        )
        session.add(candidate)
        added.append(candidate)
    await session.flush()
    await record_event(
        session,
        actor=actor,
        action="bulk_create",
        entity="contest",
        entity_id=contest_id,
        after={"candidates": [snapshot(c, ("id", *CANDIDATE_AUDITED)) for c in added]},
    )
    return added, []
