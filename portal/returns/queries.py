"""Returns data access; the tally rules (DOMAIN.md, "Tally invariants") are checked in forms.py.

Returns are kept per precinct, contest and counting group (voting method, see methods.py); every
rule applies to each. For each precinct, contest and method: sum of candidate votes +
overvotes + undervotes = ballots cast × vote-for-N; no negative counts; ballots cast above the
check-ins whose ballots the method counts is shown as a warning with both figures. A correction is
a new revision; earlier revisions stay readable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit.queries import record_event
from portal.elections.lifecycle import lock_election
from portal.errors import Conflict, NotFound
from portal.models import (
    Candidate,
    CheckIn,
    Contest,
    ContestPrecinct,
    Election,
    ElectionPrecinct,
    Precinct,
    PrecinctReturn,
    ReturnRekey,
    ReturnVote,
    User,
)
from portal.returns import methods
from portal.returns.forms import Figures
from portal.signals import return_saved
from portal.tally.queries import counted_check_in, latest_returns

if TYPE_CHECKING:  # (a canvass's precincts, from its record)
    from portal.reports.canvass import ReportPrecinct

TOTAL_LABELS = (("overvotes", "Overvotes"), ("undervotes", "Undervotes"), ("ballots_cast", "Ballots cast"))
REKEYS_BEFORE_MANAGER = 2


class ReturnsClosed(Conflict):
    pass


@dataclass
class ContestBallot:
    """A contest as it appears on one precinct's ballot, with its latest return (if any)."""

    contest: Contest
    candidates: list[Candidate]
    latest: PrecinctReturn | None = None
    votes: dict[int, int] = field(default_factory=dict)  # candidate id -> votes of the latest revision
    revisions: list[tuple[PrecinctReturn, str, str]] = field(
        default_factory=list
    )  # (return, entered by, verified by)
    method: str = "election_day"
    others: dict[str, PrecinctReturn] = field(default_factory=dict)  # method -> its latest revision
    rekeys: list[ReturnRekey] = field(default_factory=list)  # blind re-keys of `latest` that differed
    names: dict[int, str] = field(default_factory=dict)  # user id -> display name (who entered, re-keyed)

    @property
    def asked(self) -> set[str] | None:
        """The fields a blind re-key asks for: every one (None) until a re-key differs, then only
        those that differed."""
        return set(self.rekeys[-1].fields) if self.rekeys else None

    @property
    def disputed(self) -> bool:
        """Two blind re-keys differed from the entry: a manager decides (REKEYS_BEFORE_MANAGER)."""
        return len(self.rekeys) >= REKEYS_BEFORE_MANAGER

    def field_label(self, key: str) -> str:
        names = {str(c.id): c.ballot_name for c in self.candidates}
        return names.get(key) or dict(TOTAL_LABELS).get(key, key)

    def differed_labels(self) -> list[str]:
        """The fields the last re-key differed in, by name (never with figures)."""
        return [self.field_label(key) for key in self.rekeys[-1].fields] if self.rekeys else []

    def stored(self) -> dict[str, int]:
        """The latest revision's figures by field key (candidate id as text, or a total)."""
        latest = self.latest
        figures = {str(c.id): self.votes.get(c.id, 0) for c in self.candidates}
        figures.update({key: getattr(latest, key) for key, _ in TOTAL_LABELS} if latest else {})
        return figures


async def open_for_returns(session: AsyncSession, election_id: int) -> Election:
    """The election, locked against a status move for this transaction, if it takes returns."""
    election = await lock_election(session, election_id)
    if election.status not in ("open", "closed"):
        raise ReturnsClosed(
            f"{election.name} is {election.status}: returns are entered while it is open or closed."
            if election.status != "certified"
            else f"{election.name} is certified: nothing in it can be changed."
        )
    return election


async def precinct_in_election(session: AsyncSession, election_id: int, precinct_id: int) -> Precinct:
    precinct = await session.get(Precinct, precinct_id)
    taking_part = await session.scalar(
        select(ElectionPrecinct.precinct_id).where(
            ElectionPrecinct.election_id == election_id, ElectionPrecinct.precinct_id == precinct_id
        )
    )
    if precinct is None or taking_part is None:
        raise NotFound("precinct", "This precinct does not take part in the election.")
    return precinct


def counted_method(election: Election, method: str | None, counted: list[str]) -> str:
    """The method asked for (the first counted one when none is), if the election counts it."""
    if not method:  # (absent or empty)
        return counted[0] if counted else "election_day"
    if method not in counted:
        known = methods.LABELS.get(method)
        raise methods.MethodRefused(
            f"{election.name} does not count {known or repr(method[:40])} ballots"
            + ("" if known else " (not a voting method)")
            + ". It counts: "
            + ", ".join(methods.LABELS[m] for m in counted)
            + ". Nothing was saved."
        )
    return method


async def check_ins_at(
    session: AsyncSession,
    election_id: int,
    precinct_id: int,
    method: str | None = None,
    counted: list[str] | None = None,
) -> int:
    """Voters checked in at the precinct; with `method`, those whose ballot that method counts
    (`counted`: the election's methods, read here when not given)."""
    issued = None
    if method:
        if counted is None:
            counted = await methods.counted(session, election_id)
        issued = methods.issued_by(method, counted)
    return (
        await session.scalar(
            select(func.count()).where(
                CheckIn.election_id == election_id,
                CheckIn.precinct_id == precinct_id,
                counted_check_in(),
                *([CheckIn.method.in_(issued)] if issued is not None else []),
            )
        )
        or 0
    )


async def precinct_ballot(
    session: AsyncSession, election_id: int, precinct_id: int, method: str = "election_day"
) -> list[ContestBallot]:
    """The contests on this precinct's ballot, in ballot order, with their candidates and this
    method's returns (and the latest revision of every other method's)."""
    contests = (
        await session.scalars(
            select(Contest)
            .join(ContestPrecinct, ContestPrecinct.contest_id == Contest.id)
            .where(Contest.election_id == election_id, ContestPrecinct.precinct_id == precinct_id)
            .order_by(Contest.ballot_order, Contest.id)
        )
    ).all()
    ballots = []
    for contest in contests:
        candidates = (
            await session.scalars(
                select(Candidate)
                .where(Candidate.contest_id == contest.id)
                .order_by(Candidate.ballot_order, Candidate.id)
            )
        ).all()
        ballot = ContestBallot(contest, list(candidates), method=method)
        every = (
            await session.scalars(
                select(PrecinctReturn)
                .where(PrecinctReturn.precinct_id == precinct_id, PrecinctReturn.contest_id == contest.id)
                .order_by(PrecinctReturn.method, PrecinctReturn.revision.desc())
            )
        ).all()
        for stored in every:
            ballot.others.setdefault(stored.method, stored)
        revisions = [r for r in every if r.method == method]
        names = (
            {u.id: u.display_name for u in (await session.scalars(select(User))).all()} if revisions else {}
        )
        ballot.names = names
        ballot.revisions = [
            (r, names.get(r.entered_by_id, "?"), names.get(r.verified_by_id, "") if r.verified_by_id else "")
            for r in revisions
        ]
        if revisions:
            ballot.latest = revisions[0]
            ballot.votes = dict(
                (
                    await session.execute(
                        select(ReturnVote.candidate_id, ReturnVote.votes).where(
                            ReturnVote.return_id == revisions[0].id
                        )
                    )
                )
                .tuples()
                .all()
            )
            if ballot.latest.status == "entered":
                ballot.rekeys = list(
                    (
                        await session.scalars(
                            select(ReturnRekey)
                            .where(ReturnRekey.return_id == ballot.latest.id)
                            .order_by(ReturnRekey.attempt)
                        )
                    ).all()
                )
        ballots.append(ballot)
    return ballots


async def save_return(
    session: AsyncSession,
    *,
    actor: User,
    election_id: int,
    precinct_id: int,
    ballot: ContestBallot,
    figures: Figures,
) -> PrecinctReturn | None:
    """Store the figures as a new revision ("entered"); None when they equal the latest revision
    the same person entered (a double click or a resent form stores one version). Someone else's
    unverified figures are never compared here (the answer would tell a verifier they matched); once
    a blind re-key of them has differed, only the one who entered them or a manager corrects them."""
    latest = ballot.latest
    unverified_other = latest is not None and latest.status == "entered" and latest.entered_by_id != actor.id
    if latest is not None and unverified_other and ballot.rekeys and not actor.has_role("admin", "manager"):
        raise Conflict(
            f"{ballot.contest.office_title}: a blind re-key of revision {latest.revision} differed from it; "
            "the one who entered it or a manager corrects it (a manager decides if it differs twice). "
            "Nothing was saved."
        )
    if not unverified_other and figures.same_as(ballot):
        return None
    revision = (ballot.latest.revision + 1) if ballot.latest else 1
    stored = await _add_revision(
        session, ballot, election_id, precinct_id, revision, figures, status="entered", entered_by_id=actor.id
    )
    await return_saved.send_async(
        session, election_id=election_id, precinct_id=precinct_id, contest_id=ballot.contest.id
    )
    await record_event(
        session,
        actor=actor,
        action="enter_return",
        entity="precinct_return",
        entity_id=stored.id,
        before=_figures_of(ballot, ballot.latest) if ballot.latest else None,
        after={
            "election_id": election_id,
            "precinct_id": precinct_id,
            "contest_id": ballot.contest.id,
            "method": ballot.method,
            "revision": revision,
            **_plain(figures),
        },
    )
    return stored


async def _add_revision(
    session: AsyncSession,
    ballot: ContestBallot,
    election_id: int,
    precinct_id: int,
    revision: int,
    figures: Figures,
    **who: Any,
) -> PrecinctReturn:
    """Store `figures` as revision `revision` of the contest's return for the ballot's method, with
    its votes; `who` gives the status and who entered (and verified) it."""
    stored = PrecinctReturn(
        election_id=election_id,
        precinct_id=precinct_id,
        contest_id=ballot.contest.id,
        method=ballot.method,
        revision=revision,
        ballots_cast=figures.ballots_cast,
        overvotes=figures.overvotes,
        undervotes=figures.undervotes,
        **who,
    )
    session.add(stored)
    try:
        await session.flush()
    except IntegrityError as error:  # another clerk saved this revision a moment ago
        if "fk_precinct_return_counting_group" in str(error.orig):  # the method was removed meanwhile
            raise methods.MethodRefused(
                f"{methods.label(ballot.method)} is no longer counted in this election. Nothing was saved."
            ) from error
        raise Conflict(
            f"{ballot.contest.office_title}: someone saved figures for this precinct a moment ago. "
            "Reload to see them."
        ) from error
    session.add_all(
        ReturnVote(return_id=stored.id, candidate_id=c, votes=v) for c, v in figures.votes.items()
    )
    await session.flush()
    return stored


def _plain(figures: Figures) -> dict:
    return {
        "ballots_cast": figures.ballots_cast,
        "overvotes": figures.overvotes,
        "undervotes": figures.undervotes,
        "votes": {str(k): v for k, v in sorted(figures.votes.items())},
    }


def _figures_of(ballot: ContestBallot, latest: PrecinctReturn) -> dict:
    """The audit's figures of `latest`, the ballot's latest revision."""
    return {
        "revision": latest.revision,
        "ballots_cast": latest.ballots_cast,
        "overvotes": latest.overvotes,
        "undervotes": latest.undervotes,
        "votes": {str(k): v for k, v in sorted(ballot.votes.items())},
    }


@dataclass
class PrecinctStatus:
    """How far a precinct's returns are: per contest on its ballot and method counted, the latest
    revision entered or verified."""

    precinct: Precinct | ReportPrecinct
    contests: int
    entered: int
    verified: int
    groups: int = 1  # methods counted
    by_method: dict[str, tuple[int, int]] = field(default_factory=dict)  # method -> (entered, verified)
    disputed: int = 0  # returns whose blind re-keys differed twice: a manager decides

    @property
    def expected(self) -> int:
        return self.contests * self.groups

    @property
    def label(self) -> str:
        return _label(self.expected, self.entered, self.verified)

    def method_label(self, method: str) -> str:
        return _label(self.contests, *self.by_method.get(method, (0, 0)))


def _label(expected: int, entered: int, verified: int) -> str:
    if expected and verified == expected:
        return "verified"
    if entered + verified == 0:
        return "not reported"
    return "entered" if entered + verified == expected else "partial"


async def precinct_statuses(session: AsyncSession, election_id: int) -> list[PrecinctStatus]:
    """Every participating precinct with how many of its returns (contests × methods counted) are
    entered and verified, in all and by method."""
    latest = latest_returns(election_id)
    on_ballot = dict(
        (
            await session.execute(
                select(ContestPrecinct.precinct_id, func.count())
                .join(Contest, Contest.id == ContestPrecinct.contest_id)
                .where(Contest.election_id == election_id)
                .group_by(ContestPrecinct.precinct_id)
            )
        )
        .tuples()
        .all()
    )
    done: dict[int, dict[str, tuple[int, int]]] = {}
    for precinct_id, method, entered, verified in (
        await session.execute(
            select(
                latest.c.precinct_id,
                latest.c.method,
                func.count().filter(latest.c.status == "entered"),
                func.count().filter(latest.c.status == "verified"),
            ).group_by(latest.c.precinct_id, latest.c.method)
        )
    ).tuples():
        done.setdefault(precinct_id, {})[method] = (entered, verified)
    rekeyed = (
        select(ReturnRekey.return_id)
        .group_by(ReturnRekey.return_id)
        .having(func.count() >= REKEYS_BEFORE_MANAGER)
        .subquery()
    )
    disputed = dict(
        (
            await session.execute(
                select(latest.c.precinct_id, func.count())
                .join(rekeyed, rekeyed.c.return_id == latest.c.id)
                .where(latest.c.status == "entered")
                .group_by(latest.c.precinct_id)
            )
        )
        .tuples()
        .all()
    )
    groups = len(await methods.counted(session, election_id))
    precincts = await session.scalars(
        select(Precinct)
        .join(ElectionPrecinct, ElectionPrecinct.precinct_id == Precinct.id)
        .where(ElectionPrecinct.election_id == election_id)
        .order_by(Precinct.code)
    )
    found = []
    for precinct in precincts:
        by_method = done.get(precinct.id, {})
        found.append(
            PrecinctStatus(
                precinct,
                on_ballot.get(precinct.id, 0),
                sum(e for e, _ in by_method.values()),
                sum(v for _, v in by_method.values()),
                max(groups, 1),
                by_method,
                disputed.get(precinct.id, 0),
            )
        )
    return found
