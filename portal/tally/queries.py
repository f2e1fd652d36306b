"""Adding up the latest revision of every precinct's return (entered or verified), in all and by
voting method (counting group)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.models import (
    Candidate,
    CheckIn,
    Contest,
    ContestPrecinct,
    ElectionPrecinct,
    Party,
    PrecinctReturn,
    ReturnVote,
)
from portal.returns.methods import counted as methods_counted
from portal.voters import counts as roll

if TYPE_CHECKING:  # (the canvass reads these from its record: the same fields, plain dataclasses)
    from portal.reports.canvass import ReportCandidate, ReportContest, ReportParty


@dataclass
class CandidateTally:
    candidate: Candidate | ReportCandidate
    party: Party | ReportParty | None
    votes: int
    percent: float = 0.0
    leading: bool = False
    by_method: dict[str, int] = field(default_factory=dict)


@dataclass
class ContestTally:
    contest: Contest | ReportContest
    candidates: list[CandidateTally] = field(default_factory=list)
    ballots_cast: int = 0
    overvotes: int = 0
    undervotes: int = 0
    precincts: int = 0
    entered: int = 0  # precincts with returns, not all of them verified
    verified: int = 0  # precincts with every method counted verified
    methods: list[str] = field(default_factory=list)  # counted; empty for a record kept in one figure
    ballots_by_method: dict[str, int] = field(default_factory=dict)

    @property
    def split(self) -> bool:
        """Worth showing by method: more than one counted."""
        return len(self.methods) > 1

    @property
    def reporting(self) -> int:
        return self.entered + self.verified

    @property
    def candidate_votes(self) -> int:
        """The votes every choice got together: what a choice's percentage is a share of."""
        return sum(row.votes for row in self.candidates)

    @property
    def official(self) -> bool:
        """Every precinct of the contest verified; anything less is unofficial."""
        return self.precincts > 0 and self.verified == self.precincts


def live_check_in() -> ColumnElement[bool]:
    """A check-in that stands: not voided. Every count of check-ins starts here."""
    return CheckIn.voided_at.is_(None)


def counted_check_in() -> ColumnElement[bool]:
    """A check-in whose ballot counts or may still count: live, and not a rejected provisional."""
    return and_(
        live_check_in(), or_(CheckIn.provisional_status.is_(None), CheckIn.provisional_status != "rejected")
    )


@dataclass
class CheckInCounts:
    """Live check-ins (voided ones are never counted), with the provisional ballots by decision.

    A rejected provisional ballot was issued but is not counted: it is left out of turnout and
    shown beside it. A pending one may still count, so it is in turnout and shown as pending."""

    issued: int = 0
    pending: int = 0
    accepted: int = 0
    rejected: int = 0

    @property
    def counted(self) -> int:
        return self.issued - self.rejected

    @property
    def provisional(self) -> int:
        return self.pending + self.accepted + self.rejected


async def count_check_ins(
    session: AsyncSession, election_id: int, precinct_id: int | None = None
) -> CheckInCounts:
    status = CheckIn.provisional_status
    query = select(
        func.count(),
        func.count().filter(status == "pending"),
        func.count().filter(status == "accepted"),
        func.count().filter(status == "rejected"),
    ).where(CheckIn.election_id == election_id, live_check_in())
    if precinct_id is not None:
        query = query.where(CheckIn.precinct_id == precinct_id)
    return CheckInCounts(*(await session.execute(query)).one())


@dataclass
class Turnout:
    counts: CheckInCounts
    registered: int  # active voters in the election's precincts (now, or fixed when the polls closed)
    fixed_at_close: bool = False

    @property
    def checked_in(self) -> int:
        """Turnout's numerator: ballots that count or may still count (not voided, not rejected)."""
        return self.counts.counted

    @property
    def percent(self) -> float:
        return 100.0 * self.checked_in / self.registered if self.registered else 0.0


def latest_returns(election_id: int):
    """The latest revision of each precinct's return per contest and method (the tally, the
    canvass, the returns list and the certification check all read this one)."""
    return (
        select(PrecinctReturn)
        .where(PrecinctReturn.election_id == election_id)
        .distinct(PrecinctReturn.precinct_id, PrecinctReturn.contest_id, PrecinctReturn.method)
        .order_by(
            PrecinctReturn.precinct_id,
            PrecinctReturn.contest_id,
            PrecinctReturn.method,
            PrecinctReturn.revision.desc(),
        )
        .subquery()
    )


async def contest_tallies(session: AsyncSession, election_id: int) -> list[ContestTally]:
    latest = latest_returns(election_id)
    contests = (
        await session.scalars(
            select(Contest).where(Contest.election_id == election_id).order_by(Contest.ballot_order)
        )
    ).all()
    tallies = {c.id: ContestTally(c) for c in contests}
    for contest_id, precincts in (
        await session.execute(
            select(ContestPrecinct.contest_id, func.count())
            .where(ContestPrecinct.contest_id.in_(list(tallies)))
            .group_by(ContestPrecinct.contest_id)
        )
    ).tuples():
        tallies[contest_id].precincts = precincts
    counted = await methods_counted(session, election_id)
    for tally in tallies.values():
        tally.methods = counted
    totals = await session.execute(
        select(
            latest.c.contest_id,
            latest.c.method,
            func.sum(latest.c.ballots_cast),
            func.sum(latest.c.overvotes),
            func.sum(latest.c.undervotes),
        ).group_by(latest.c.contest_id, latest.c.method)
    )
    for contest_id, method, ballots, over, under in totals.tuples():
        tally = tallies[contest_id]
        tally.ballots_cast += ballots or 0
        tally.overvotes += over or 0
        tally.undervotes += under or 0
        tally.ballots_by_method[method] = ballots or 0
    # A precinct is verified for a contest when every counted method is; reporting when any is in.
    per_precinct = (
        select(
            latest.c.contest_id,
            func.count().filter(latest.c.status == "verified").label("verified"),
        )
        .group_by(latest.c.contest_id, latest.c.precinct_id)
        .subquery()
    )
    for contest_id, reporting, verified in (
        await session.execute(
            select(
                per_precinct.c.contest_id,
                func.count(),
                func.count().filter(per_precinct.c.verified >= max(len(counted), 1)),
            ).group_by(per_precinct.c.contest_id)
        )
    ).tuples():
        tallies[contest_id].entered, tallies[contest_id].verified = reporting - verified, verified
    by_method: dict[int, dict[str, int]] = {}
    for candidate_id, method, count in (
        await session.execute(
            select(ReturnVote.candidate_id, latest.c.method, func.sum(ReturnVote.votes))
            .join(latest, latest.c.id == ReturnVote.return_id)
            .group_by(ReturnVote.candidate_id, latest.c.method)
        )
    ).tuples():
        by_method.setdefault(candidate_id, {})[method] = int(count)
    votes = {candidate_id: sum(split.values()) for candidate_id, split in by_method.items()}
    rows = await session.execute(
        select(Candidate, Party)
        .outerjoin(Party, Party.id == Candidate.party_id)
        .where(Candidate.election_id == election_id)
        .order_by(Candidate.contest_id, Candidate.ballot_order, Candidate.id)
    )
    for candidate, party in rows.tuples():
        tallies[candidate.contest_id].candidates.append(
            CandidateTally(
                candidate, party, int(votes.get(candidate.id, 0)), by_method=by_method.get(candidate.id, {})
            )
        )
    for tally in tallies.values():
        rank_candidates(tally)
    return list(tallies.values())


def rank_candidates(tally: ContestTally) -> None:
    """Each candidate's share of the candidate votes, and the leaders (the top vote-for-N, ties included)."""
    total = sum(c.votes for c in tally.candidates)
    top = sorted((c.votes for c in tally.candidates), reverse=True)[: tally.contest.vote_for]
    for row in tally.candidates:
        row.percent = 100.0 * row.votes / total if total else 0.0
        row.leading = total > 0 and bool(top) and row.votes >= top[-1] and row.votes > 0


async def election_turnout(session: AsyncSession, election_id: int) -> Turnout:
    """Check-ins over active voters: the roll as it was when the polls closed, else as it is now.
    Voided check-ins and rejected provisional ballots are not turnout (see CheckInCounts)."""
    checked_in = await count_check_ins(session, election_id)
    frozen = await session.scalar(
        select(func.sum(ElectionPrecinct.registered)).where(ElectionPrecinct.election_id == election_id)
    )
    if frozen is not None:
        return Turnout(checked_in, frozen, fixed_at_close=True)
    registered = (
        await session.scalar(
            select(roll.active_voters())
            .join(ElectionPrecinct, ElectionPrecinct.precinct_id == roll.PRECINCT)
            .where(ElectionPrecinct.election_id == election_id)
        )
        or 0
    )
    return Turnout(checked_in, registered)
