"""Provisional ballots: the election's list (by status, precinct and reason) and their decision,
accepted or rejected with a reason, each audited; pending ones stop certification."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit.queries import record_event
from portal.checkin.queries import METHOD_LABELS
from portal.clock import local
from portal.elections.queries import ElectionLocked, election_for_write
from portal.errors import Conflict, NotFound
from portal.models import CLERK, DECIDER, PROVISIONAL_STATUSES, CheckIn, Election, Precinct, User, Voter
from portal.signals import provisionals_decided
from portal.tally.queries import live_check_in

DECISIONS = {"accept": "accepted", "reject": "rejected"}


class AdjudicationRefused(Conflict):
    pass


@dataclass
class ProvisionalRow:
    check_in: CheckIn
    voter: Voter
    precinct: Precinct
    clerk: str
    decided_by: str


async def list_provisionals(
    session: AsyncSession,
    election_id: int,
    *,
    status: str = "pending",
    precinct_id: int | None = None,
    reason: str | None = None,
    limit: int = 500,
) -> list[ProvisionalRow]:
    """The election's live provisional ballots with this status ("" for any), oldest first."""
    query = (
        select(CheckIn, Voter, Precinct, CLERK.display_name, DECIDER.display_name)
        .join(Voter, Voter.id == CheckIn.voter_id)
        .join(Precinct, Precinct.id == CheckIn.precinct_id)
        .outerjoin(CLERK, CLERK.id == CheckIn.user_id)
        .outerjoin(DECIDER, DECIDER.id == CheckIn.decided_by_id)
        .where(CheckIn.election_id == election_id, CheckIn.method == "provisional", live_check_in())
        .order_by(CheckIn.checked_in_at, CheckIn.id)
        .limit(limit)
    )
    if status in PROVISIONAL_STATUSES:
        query = query.where(CheckIn.provisional_status == status)
    if precinct_id is not None:
        query = query.where(CheckIn.precinct_id == precinct_id)
    if reason:
        query = query.where(CheckIn.decision_reason == reason)
    rows = await session.execute(query)
    return [ProvisionalRow(c, v, p, n or "a former user", d or "") for c, v, p, n, d in rows.tuples()]


async def provisional_precincts(session: AsyncSession, election_id: int) -> list[Precinct]:
    """Precincts with a live provisional ballot in the election (the screen's precinct filter)."""
    ids = select(CheckIn.precinct_id).where(
        CheckIn.election_id == election_id, CheckIn.method == "provisional", live_check_in()
    )
    precincts = await session.scalars(select(Precinct).where(Precinct.id.in_(ids)).order_by(Precinct.code))
    return list(precincts.all())


async def pending_provisionals_by_precinct(session: AsyncSession, election_id: int) -> list[tuple[str, int]]:
    """(precinct code, pending provisional ballots) where any are pending: these stop certification."""
    rows = await session.execute(
        select(Precinct.code, func.count())
        .join(CheckIn, CheckIn.precinct_id == Precinct.id)
        .where(
            CheckIn.election_id == election_id,
            CheckIn.method == "provisional",  # (as the partial index ix_check_in_provisional says)
            CheckIn.provisional_status == "pending",
            live_check_in(),
        )
        .group_by(Precinct.code)
        .order_by(Precinct.code)
    )
    return [(code, count) for code, count in rows.tuples()]


async def adjudicable_election(session: AsyncSession, election_id: int) -> Election:
    """The election, share-locked, if its provisional ballots may be decided (open or closed)."""
    election = await election_for_write(session, election_id)
    if election.status not in ("open", "closed"):
        raise ElectionLocked(f"{election.name} is {election.status}: there is nothing to adjudicate.")
    return election


@dataclass
class Decided:
    decided: int
    skipped: list[str]  # "Ann Lee: accepted by Mia at 14:02" for those decided by someone else first


async def decide_provisionals(
    session: AsyncSession,
    *,
    actor: User,
    election_id: int,
    check_in_ids: list[int],
    decision: str,
    reason: str,
    reasons: list[str],
) -> Decided:
    """Accept or reject pending provisional ballots, each with one audit event.

    A check-in that is not a provisional ballot of this election refuses the whole request (nothing
    stored); one already decided (someone else was first) or voided is left alone and unaudited."""
    await adjudicable_election(session, election_id)
    if decision not in DECISIONS:
        raise AdjudicationRefused("Choose to accept or to reject. Nothing was changed.")
    if reason not in reasons:
        raise AdjudicationRefused("Choose a reason from the list. Nothing was changed.")
    ids = sorted(set(check_in_ids))
    if not ids:
        raise AdjudicationRefused("Tick at least one provisional ballot. Nothing was changed.")
    found = (
        await session.execute(
            select(CheckIn.id, CheckIn.method, Voter.first_name, Voter.last_name)
            .join(Voter, Voter.id == CheckIn.voter_id)
            .where(CheckIn.id.in_(ids), CheckIn.election_id == election_id)
        )
    ).all()
    if len(found) != len(ids):
        raise NotFound("check-in", "Some of these check-ins are not in this election. Nothing was changed.")
    others = [
        f"{row.first_name} {row.last_name} ({METHOD_LABELS[row.method]})"
        for row in found
        if row.method != "provisional"
    ]
    if others:
        raise AdjudicationRefused(
            f"Only provisional ballots are accepted or rejected, not {', '.join(others)}. "
            "Nothing was changed."
        )
    status = DECISIONS[decision]
    # The WHERE is the race guard: a ballot someone else decided (or voided) meanwhile is not
    # decided again and not audited.
    changed = (
        await session.execute(
            update(CheckIn)
            .where(CheckIn.id.in_(ids), CheckIn.provisional_status == "pending", live_check_in())
            .values(
                provisional_status=status,
                decided_by_id=actor.id,
                decided_at=func.now(),
                decision_reason=reason,
            )
            .returning(CheckIn.id, CheckIn.voter_id, CheckIn.precinct_id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    for row in sorted(changed):
        await record_event(
            session,
            actor=actor,
            action=f"provisional_{status}",
            entity="voter",
            entity_id=row.voter_id,
            before={"election_id": election_id, "check_in_id": row.id, "provisional_status": "pending"},
            after={"provisional_status": status, "reason": reason, "precinct_id": row.precinct_id},
        )
    skipped = []
    left = [i for i in ids if i not in {row.id for row in changed}]
    if left:
        rows = await session.execute(
            select(CheckIn, Voter.first_name, Voter.last_name, DECIDER.display_name)
            .join(Voter, Voter.id == CheckIn.voter_id)
            .outerjoin(DECIDER, DECIDER.id == CheckIn.decided_by_id)
            .where(CheckIn.id.in_(left))
            .order_by(CheckIn.id)
        )
        for check_in, first, last, name in rows.tuples():
            if check_in.voided_at is not None:
                skipped.append(f"{first} {last}: the check-in was voided")
            else:
                at = f" at {local(check_in.decided_at):%H:%M %Z}" if check_in.decided_at else ""
                skipped.append(
                    f"{first} {last}: already {check_in.provisional_status} by {name or 'a former user'}"
                    f"{at} ({check_in.decision_reason})"
                )
    if changed:
        await provisionals_decided.send_async(session, election_id=election_id)
    return Decided(len(changed), skipped)
