"""Election data access and the lifecycle rules that need the database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import flag_modified

from portal.audit.queries import record_event, snapshot
from portal.editing import check_version, delete_audited
from portal.elections.lifecycle import find_election, lock_election, next_move
from portal.errors import Conflict
from portal.models import (
    VOTING_METHODS,
    Candidate,
    Contest,
    ContestPrecinct,
    CountingGroup,
    Election,
    ElectionPrecinct,
    Party,
    Precinct,
    User,
)
from portal.returns.methods import set_counted
from portal.signals import election_methods_changed, election_status_changed
from portal.tally.queries import latest_returns
from portal.voters import counts as roll

AUDITED = ("name", "election_date", "kind", "status")


class ElectionLocked(Conflict):
    """A write to a certified election, or a ballot change once the election is open."""


class LifecycleRefused(Conflict):
    def __init__(self, description: str, problems: list[str] | None = None, problems_title: str = ""):
        super().__init__(description)
        self.problems = problems or []
        self.problems_title = problems_title


@dataclass
class ElectionSummary:
    election: Election
    contests: int
    candidates: int
    precincts: int


@dataclass
class ContestView:
    contest: Contest
    candidates: list[tuple[Candidate, Party | None]]
    precinct_count: int


@dataclass
class ElectionDetail:
    election: Election
    contests: list[ContestView]
    precincts: list[Precinct]
    all_precincts: int
    updated_by: str = ""
    problems: list[str] = field(default_factory=list)


async def participating_precincts(session: AsyncSession, election_id: int) -> list[Precinct]:
    """The election's precincts, by code."""
    return list(
        (
            await session.scalars(
                select(Precinct)
                .join(ElectionPrecinct, ElectionPrecinct.precinct_id == Precinct.id)
                .where(ElectionPrecinct.election_id == election_id)
                .order_by(Precinct.code)
            )
        ).all()
    )


async def list_elections(session: AsyncSession) -> list[ElectionSummary]:
    contests = select(func.count()).where(Contest.election_id == Election.id).scalar_subquery()
    candidates = select(func.count()).where(Candidate.election_id == Election.id).scalar_subquery()
    precincts = select(func.count()).where(ElectionPrecinct.election_id == Election.id).scalar_subquery()
    rows = await session.execute(
        select(Election, contests, candidates, precincts).order_by(
            Election.election_date.desc(), Election.id.desc()
        )
    )
    return [ElectionSummary(*row) for row in rows.all()]


async def get_election(session: AsyncSession, election_id: int) -> Election:
    """The election, or NotFound."""
    return await find_election(session, election_id)


async def election_for_write(
    session: AsyncSession, election_id: int, *, ballot_change: bool = False
) -> Election:
    """The election, share-locked for this transaction, if it may be written to.

    Certified: nothing may change. Open or closed: the ballot (contests, candidates, their order,
    vote-for) is fixed; corrections of names and candidate status are still allowed.
    """
    election = await lock_election(session, election_id)
    if election.status == "certified":
        raise ElectionLocked(f"{election.name} is certified: nothing in it can be changed.")
    if ballot_change and election.status != "draft":
        raise ElectionLocked(
            f"{election.name} is {election.status}: its ballot (contests, candidates and their "
            "order) is fixed once the election opens."
        )
    return election


async def election_detail(session: AsyncSession, election_id: int) -> ElectionDetail:
    election = await get_election(session, election_id)
    contests = (
        await session.scalars(
            select(Contest)
            .where(Contest.election_id == election_id)
            .order_by(Contest.ballot_order, Contest.id)
        )
    ).all()
    rows = await session.execute(
        select(Candidate, Party)
        .outerjoin(Party, Party.id == Candidate.party_id)
        .where(Candidate.election_id == election_id)
        .order_by(Candidate.ballot_order, Candidate.id)
    )
    by_contest: dict[int, list] = {c.id: [] for c in contests}
    for candidate, party in rows.tuples():
        by_contest[candidate.contest_id].append((candidate, party))
    counts = dict(
        (
            await session.execute(
                select(ContestPrecinct.contest_id, func.count())
                .where(ContestPrecinct.contest_id.in_(list(by_contest)))
                .group_by(ContestPrecinct.contest_id)
            )
        )
        .tuples()
        .all()
    )
    precincts = await participating_precincts(session, election_id)
    all_precincts = await session.scalar(select(func.count()).select_from(Precinct)) or 0
    updated_by = ""
    if election.updated_by_id:
        user = await session.get(User, election.updated_by_id)
        updated_by = user.display_name if user else ""
    detail = ElectionDetail(
        election,
        [ContestView(c, by_contest[c.id], counts.get(c.id, 0)) for c in contests],
        list(precincts),
        all_precincts,
        updated_by,
    )
    if election.status == "draft":
        detail.problems = ballot_problems(detail)
    return detail


def ballot_problems(detail: ElectionDetail) -> list[str]:
    """What stops a draft from opening."""
    problems = []
    if not detail.precincts:
        problems.append("No precinct takes part in the election.")
    if not detail.contests:
        problems.append("The ballot has no contest.")
    for view in detail.contests:
        qualified = [c for c, _ in view.candidates if c.status == "qualified"]
        title = view.contest.office_title
        if len(qualified) < view.contest.vote_for:
            problems.append(
                f"{title}: vote for {view.contest.vote_for} but only {len(qualified)} qualified "
                f"candidate{'s' if len(qualified) != 1 else ''}."
            )
        if not view.precinct_count:
            problems.append(f"{title}: on no precinct's ballot.")
    return problems


async def all_precinct_ids(session: AsyncSession) -> list[int]:
    return list((await session.scalars(select(Precinct.id).order_by(Precinct.code))).all())


async def participating_precinct_ids(session: AsyncSession, election_id: int) -> list[int]:
    return list(
        (
            await session.scalars(
                select(ElectionPrecinct.precinct_id).where(ElectionPrecinct.election_id == election_id)
            )
        ).all()
    )


async def _set_participants(session: AsyncSession, election: Election, precinct_ids: list[int]) -> None:
    await session.execute(delete(ElectionPrecinct).where(ElectionPrecinct.election_id == election.id))
    session.add_all(ElectionPrecinct(election_id=election.id, precinct_id=p) for p in set(precinct_ids))
    # A contest cannot be on the ballot of a precinct that does not take part.
    contest_ids = select(Contest.id).where(Contest.election_id == election.id)
    await session.execute(
        delete(ContestPrecinct).where(
            ContestPrecinct.contest_id.in_(contest_ids), ContestPrecinct.precinct_id.not_in(precinct_ids)
        )
    )


async def create_election(
    session: AsyncSession,
    *,
    actor: User,
    name: str,
    election_date: date,
    kind: str,
    precinct_ids: list[int],
    methods: Sequence[str] = VOTING_METHODS,
) -> Election:
    election = Election(
        name=name, election_date=election_date, kind=kind, status="draft", updated_by_id=actor.id
    )
    session.add(election)
    await session.flush()
    await _set_participants(session, election, precinct_ids)
    _, counted_methods = await set_counted(session, election.id, list(methods))
    await session.flush()
    await record_event(
        session,
        actor=actor,
        action="create",
        entity="election",
        entity_id=election.id,
        after={
            **snapshot(election, AUDITED),
            "precincts": len(set(precinct_ids)),
            "methods": counted_methods,
        },
    )
    return election


async def update_election(
    session: AsyncSession,
    *,
    actor: User,
    election_id: int,
    seen_version: int | None,
    name: str,
    election_date: date,
    kind: str,
    precinct_ids: list[int] | None,
    methods: list[str] | None = None,
) -> Election:
    """`precinct_ids` None keeps the participating precincts (they are fixed once open); `methods`
    None keeps the voting methods counted (they can change until the election closes)."""
    election = await election_for_write(session, election_id)
    await session.refresh(election, with_for_update=True)
    await check_version(session, election, seen_version, noun="election", fields=AUDITED)
    before = snapshot(election, AUDITED)
    election.name, election.election_date, election.kind = name, election_date, kind
    election.updated_by_id = actor.id
    after = snapshot(election, AUDITED)
    if precinct_ids is not None and election.status == "draft":
        old = set(await participating_precinct_ids(session, election_id))
        if old != set(precinct_ids):
            await _set_participants(session, election, precinct_ids)
            before["precincts"], after["precincts"] = len(old), len(set(precinct_ids))
    if methods is not None and election.status in ("draft", "open"):
        old_methods, new_methods = await set_counted(session, election_id, methods)
        if old_methods != new_methods:
            before["methods"], after["methods"] = old_methods, new_methods
            await election_methods_changed.send_async(session, election_id=election_id)
    if before == after:
        return election
    # Precincts and methods live in their own tables: the election row's version moves with them,
    # so a form loaded before this change is refused as stale instead of undoing it unseen.
    flag_modified(election, "updated_by_id")
    await session.flush()
    await record_event(
        session,
        actor=actor,
        action="update",
        entity="election",
        entity_id=election.id,
        before=before,
        after=after,
    )
    return election


async def delete_election(session: AsyncSession, *, actor: User, election_id: int) -> Election:
    election = await election_for_write(session, election_id)
    if election.status != "draft":
        raise ElectionLocked(f"{election.name} is {election.status}: only a draft can be deleted.")
    await delete_audited(session, election, actor=actor, entity="election", fields=AUDITED)
    return election


async def missing_verified_returns(session: AsyncSession, election_id: int) -> list[str]:
    """Codes of participating precincts without a verified latest return for every contest on
    their ballot and every voting method the election counts."""
    latest = latest_returns(election_id)
    # Materialised once: inlined, the planner underestimated the latest returns (8,000 for 80,000)
    # and read them again for every contest, precinct and method (42 s at 2,000 precincts x 4).
    verified = (
        select(latest.c.precinct_id, latest.c.contest_id, latest.c.method)
        .where(latest.c.status == "verified")
        .cte("verified")
        .prefix_with("MATERIALIZED")
    )
    needed = (
        select(Precinct.code)
        .select_from(ContestPrecinct)
        .join(Contest, Contest.id == ContestPrecinct.contest_id)
        .join(CountingGroup, CountingGroup.election_id == Contest.election_id)
        .join(Precinct, Precinct.id == ContestPrecinct.precinct_id)
        .outerjoin(
            verified,
            (verified.c.precinct_id == ContestPrecinct.precinct_id)
            & (verified.c.contest_id == ContestPrecinct.contest_id)
            & (verified.c.method == CountingGroup.method),
        )
        .where(Contest.election_id == election_id, verified.c.contest_id.is_(None))
        .distinct()
        .order_by(Precinct.code)
    )
    # A participating precinct with no contest on its ballot has nothing to verify.
    return list((await session.scalars(needed)).all())


PENDING_TITLE = "Provisional ballots awaiting a decision:"


async def pending_provisional_problems(session: AsyncSession, election_id: int) -> list[str]:
    """[summary, "P-001: 2 pending", ...] while provisional ballots await a decision, else []."""
    from portal.checkin.provisionals import pending_provisionals_by_precinct

    by_precinct = await pending_provisionals_by_precinct(session, election_id)
    if not by_precinct:
        return []
    total = sum(count for _, count in by_precinct)
    codes = ", ".join(code for code, _ in by_precinct)
    summary = (
        f"Cannot certify: {total} provisional ballot{'s are' if total != 1 else ' is'} still pending in "
        f"precinct{'s' if len(by_precinct) != 1 else ''} {codes}. Accept or reject "
        f"{'them' if total != 1 else 'it'} first. Nothing was changed."
    )
    return [summary, *(f"{code}: {count} pending" for code, count in by_precinct)]


async def move_election(
    session: AsyncSession, *, actor: User, election_id: int, to: str, seen_version: int | None
) -> Election:
    """One step forward along the lifecycle, checked, audited (through the signal) and signalled."""
    election = await find_election(session, election_id, with_for_update=True, populate_existing=True)
    move = next_move(election.status)
    if move is None or move.to != to:
        raise LifecycleRefused(
            f"{election.name} is {election.status}; it cannot move to {to}. "
            "The lifecycle only moves forward: draft, open, closed, certified."
        )
    if actor.role not in move.roles:
        raise LifecycleRefused(f"Your role ({actor.role}) cannot {move.label.lower()}.")
    if seen_version is not None and seen_version != election.version:
        raise LifecycleRefused(f"{election.name} changed after you opened this page; reload and check again.")
    if to == "open":
        problems = ballot_problems(await election_detail(session, election_id))
        if problems:
            raise LifecycleRefused(f"{election.name} cannot open yet.", problems)
    if to == "certified":
        pending = await pending_provisional_problems(session, election_id)
        if pending:
            raise LifecycleRefused(pending[0], pending[1:], PENDING_TITLE)
        missing = await missing_verified_returns(session, election_id)
        if missing:
            raise LifecycleRefused(
                f"{election.name} cannot be certified: {len(missing)} precinct"
                f"{'s have' if len(missing) != 1 else ' has'} no verified returns.",
                missing,
            )
    before = election.status
    election.status = to
    election.updated_by_id = actor.id
    await session.flush()
    if to == "closed":
        await freeze_registration(session, election_id)
    if to == "certified":
        from portal.reports.queries import freeze_certified_canvass

        await freeze_certified_canvass(session, election=election, actor=actor)
    await election_status_changed.send_async(session, election=election, before=before, actor=actor)
    return election


async def freeze_registration(session: AsyncSession, election_id: int) -> None:
    """When the polls close, each precinct's active voters become the election's registration: the
    turnout of a past election must not move with the roll."""
    voters = select(roll.active_voters()).where(ElectionPrecinct.precinct_id == roll.PRECINCT)
    active = voters.scalar_subquery()
    await session.execute(
        update(ElectionPrecinct).where(ElectionPrecinct.election_id == election_id).values(registered=active)
    )
