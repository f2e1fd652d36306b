"""The canvass: every precinct's latest figures for every contest, in a stable order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from markupsafe import Markup
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

    _candidate_totals: dict[int, int] = field(default_factory=dict)
    _contest_totals: dict[int, tuple[int, int, int]] = field(default_factory=dict)

    def add_up(self) -> None:
        """Totals once, not once per footer cell (the canvass has thousands of rows)."""
        for (candidate_id, _), votes in self.votes.items():
            self._candidate_totals[candidate_id] = self._candidate_totals.get(candidate_id, 0) + votes
        for (contest_id, _), (ballots, over, under, _) in self.totals.items():
            b, o, u = self._contest_totals.get(contest_id, (0, 0, 0))
            self._contest_totals[contest_id] = (b + ballots, o + over, u + under)

    def table_rows(
        self, contest_id: int, candidates: list[Candidate], with_totals: bool
    ) -> list[tuple[str, Markup]]:
        """A canvass table's rows: (precinct code, the row's cells as HTML). Formatted here once:
        the template would otherwise do tens of thousands of lookups for a large county."""
        rows = []
        for precinct in self.precincts:
            if (contest_id, precinct.id) not in self.on_ballot:
                continue
            totals = self.totals.get((contest_id, precinct.id))
            if totals is None:
                cells = ["—"] * (len(candidates) + (3 if with_totals else 0))
            else:
                cells = [f"{self.votes.get((c.id, precinct.id), 0):,}" for c in candidates]
                if with_totals:
                    cells += [f"{totals[1]:,}", f"{totals[2]:,}", f"{totals[0]:,}"]
            rows.append((precinct.code, Markup("<td>" + "</td><td>".join(cells) + "</td>")))  # noqa: S704 - digits only
        return rows

    def contest_total(self, contest_id: int) -> tuple[int, int, int]:
        return self._contest_totals.get(contest_id, (0, 0, 0))

    def candidate_total(self, candidate_id: int) -> int:
        return self._candidate_totals.get(candidate_id, 0)

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
    result.add_up()
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
