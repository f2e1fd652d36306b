"""The canvass: every precinct's latest figures for every contest, in a stable order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.models import (
    Candidate,
    CheckIn,
    Contest,
    ContestPrecinct,
    Election,
    ElectionPrecinct,
    Party,
    Precinct,
    PrecinctReturn,
    ReturnVote,
    Voter,
)
from portal.tally.queries import _latest_returns


@dataclass
class Canvass:
    election: Election
    contests: list[Contest]
    candidates: dict[int, list[Candidate]]  # contest id -> candidates in ballot order
    parties: list[Party]
    precincts: list[Precinct]
    on_ballot: set[tuple[int, int]]  # (contest id, precinct id)
    votes: dict[tuple[int, int], int] = field(default_factory=dict)  # (candidate id, precinct id) -> votes
    totals: dict[tuple[int, int], tuple[int, int, int, str]] = field(
        default_factory=dict
    )  # (contest, precinct)
    registered: dict[int, int] = field(default_factory=dict)
    checked_in: dict[int, int] = field(default_factory=dict)
    certified_at: datetime | None = None

    def contest_total(self, contest_id: int) -> tuple[int, int, int]:
        rows = [v for (c, _), v in self.totals.items() if c == contest_id]
        return tuple(sum(r[i] for r in rows) for i in range(3))  # type: ignore[return-value]

    def candidate_total(self, candidate_id: int) -> int:
        return sum(v for (c, _), v in self.votes.items() if c == candidate_id)

    @property
    def status(self) -> str:
        if self.election.status == "certified":
            return "certified"
        reported = {key for key in self.totals}
        return "unofficial-complete" if reported >= self.on_ballot else "unofficial-partial"


async def canvass(session: AsyncSession, election_id: int) -> Canvass:
    election = await session.get(Election, election_id)
    contests = list(
        (
            await session.scalars(
                select(Contest)
                .where(Contest.election_id == election_id)
                .order_by(Contest.ballot_order, Contest.id)
            )
        ).all()
    )
    candidates: dict[int, list[Candidate]] = {c.id: [] for c in contests}
    for candidate in (
        await session.scalars(
            select(Candidate)
            .where(Candidate.election_id == election_id)
            .order_by(Candidate.contest_id, Candidate.ballot_order, Candidate.id)
        )
    ).all():
        candidates[candidate.contest_id].append(candidate)
    party_ids = {c.party_id for group in candidates.values() for c in group if c.party_id}
    parties = list(
        (await session.scalars(select(Party).where(Party.id.in_(party_ids)).order_by(Party.id))).all()
    )
    precincts = list(
        (
            await session.scalars(
                select(Precinct)
                .join(ElectionPrecinct, ElectionPrecinct.precinct_id == Precinct.id)
                .where(ElectionPrecinct.election_id == election_id)
                .order_by(Precinct.code)
            )
        ).all()
    )
    on_ballot = set(
        (
            await session.execute(
                select(ContestPrecinct.contest_id, ContestPrecinct.precinct_id).where(
                    ContestPrecinct.contest_id.in_([c.id for c in contests])
                )
            )
        )
        .tuples()
        .all()
    )
    result = Canvass(election, contests, candidates, parties, precincts, on_ballot)
    latest = _latest_returns(election_id)
    for contest_id, precinct_id, ballots, over, under, status in (
        await session.execute(
            select(
                latest.c.contest_id,
                latest.c.precinct_id,
                latest.c.ballots_cast,
                latest.c.overvotes,
                latest.c.undervotes,
                latest.c.status,
            )
        )
    ).tuples():
        result.totals[(contest_id, precinct_id)] = (ballots, over, under, status)
    for candidate_id, precinct_id, votes in (
        await session.execute(
            select(ReturnVote.candidate_id, latest.c.precinct_id, ReturnVote.votes).join(
                latest, latest.c.id == ReturnVote.return_id
            )
        )
    ).tuples():
        result.votes[(candidate_id, precinct_id)] = votes
    ids = [p.id for p in precincts]
    result.registered = dict(
        (
            await session.execute(
                select(Voter.precinct_id, func.count())
                .where(Voter.precinct_id.in_(ids), Voter.status == "active")
                .group_by(Voter.precinct_id)
            )
        )
        .tuples()
        .all()
    )
    result.checked_in = dict(
        (
            await session.execute(
                select(CheckIn.precinct_id, func.count())
                .where(CheckIn.election_id == election_id)
                .group_by(CheckIn.precinct_id)
            )
        )
        .tuples()
        .all()
    )
    if election.status == "certified":
        result.certified_at = election.updated_at
    return result


__all__ = ["Canvass", "PrecinctReturn", "canvass"]


async def check_ins_by_method(session: AsyncSession, election_id: int) -> dict[int, dict[str, int]]:
    """precinct id -> {method: check-ins}."""
    rows = await session.execute(
        select(CheckIn.precinct_id, CheckIn.method, func.count())
        .where(CheckIn.election_id == election_id)
        .group_by(CheckIn.precinct_id, CheckIn.method)
    )
    found: dict[int, dict[str, int]] = {}
    for precinct_id, method, count in rows.tuples():
        found.setdefault(precinct_id, {})[method] = count
    return found
