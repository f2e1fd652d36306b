"""Election night for the demo's open election: check-ins by method (some provisional ballots still
pending), returns by method in every state (verified, entered, partial, not reporting), and a few
incidents, open and resolved. Everything obeys the rules the screens enforce: each return's votes,
over- and undervotes add up to its ballots × vote-for, and a method's ballots never exceed the
check-ins that issue them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from portal.models import (
    Candidate,
    CheckIn,
    Contest,
    Election,
    Incident,
    PrecinctReturn,
    ReturnVote,
    User,
)
from portal.returns.methods import FROM_CHECK_IN

TURNOUT = 0.46  # of active voters, so far tonight
# How ballots were issued: in person, early, by mail, provisional.
METHOD_SHARES = [("in_person", 0.55), ("early", 0.29), ("mail", 0.14), ("provisional", 0.02)]
INCIDENTS = [
    ("Voting booth 3 wobbles; taped and back in use.", "resolved"),
    ("Poll book printer jammed; replaced from the spare kit.", "resolved"),
    ("Line out the door since 17:30, about 40 minutes' wait.", "open"),
    ("Voter says their name is spelled wrong on the roll; sent to the registrar's desk.", "open"),
    ("Accessible entrance blocked by a delivery van; driver asked to move.", "resolved"),
]


async def election_night(session: AsyncSession, rng: random.Random, election: Election) -> dict[str, int]:
    """Check-ins, returns and incidents for `election` (open, on every demo precinct)."""
    users = {u.username: u.id for u in (await session.scalars(select(User))).all()}
    clerk, checker, manager = users["clerk"], users["clerk2"], users["manager"]
    now = datetime.now(UTC).replace(microsecond=0)
    voters = (
        await session.execute(text("SELECT id, precinct_id FROM voter WHERE status = 'active' ORDER BY id"))
    ).all()
    methods, weights = zip(*METHOD_SHARES, strict=True)
    check_ins = []
    for voter_id, precinct_id in voters:
        if rng.random() >= TURNOUT:
            continue
        method = rng.choices(methods, weights)[0]
        row = {
            "voter_id": voter_id,
            "election_id": election.id,
            "precinct_id": precinct_id,
            "method": method,
            "user_id": clerk,
            "checked_in_at": now - timedelta(minutes=rng.randrange(5, 12 * 60)),
            # (every row names every column: an executemany takes its columns from the first row)
            "provisional_status": None,
            "decided_by_id": None,
            "decided_at": None,
            "decision_reason": None,
        }
        if method == "provisional":
            roll = rng.random()
            status = "pending" if roll < 0.6 else "accepted" if roll < 0.9 else "rejected"
            row["provisional_status"] = status
            if status != "pending":
                row |= {
                    "decided_by_id": manager,
                    "decided_at": now - timedelta(minutes=rng.randrange(1, 30)),
                    "decision_reason": "Registration confirmed"
                    if status == "accepted"
                    else "Not on the roll",
                }
        check_ins.append(row)
    if check_ins:  # (an empty list would insert one row of defaults)
        await session.execute(CheckIn.__table__.insert(), check_ins)  # type: ignore[attr-defined]  # a Table

    # Ballots per precinct and counting group: the check-ins that issue them (a provisional ballot
    # once accepted).
    ballots: dict[tuple[int, str], int] = {}
    for row in check_ins:
        if row["method"] == "provisional" and row.get("provisional_status") != "accepted":
            continue
        key = (row["precinct_id"], FROM_CHECK_IN[row["method"]])
        ballots[key] = ballots.get(key, 0) + 1
    contests = (
        await session.scalars(select(Contest).where(Contest.election_id == election.id).order_by(Contest.id))
    ).all()
    candidates = {
        c.id: (
            await session.scalars(
                select(Candidate).where(Candidate.contest_id == c.id).order_by(Candidate.id)
            )
        ).all()
        for c in contests
    }
    # A lean per contest, so the panels show a race rather than a tie.
    leans = {c.id: [rng.uniform(0.5, 1.5) for _ in candidates[c.id]] for c in contests}
    precinct_ids = sorted({p for p, _ in ballots})
    returns = 0
    for n, precinct_id in enumerate(precinct_ids):
        share = n / max(len(precinct_ids), 1)
        if share >= 0.8:  # not reporting yet
            continue
        # Verified, entered, or election day only (mail and provisional counted later).
        plan = "verified" if share < 0.35 else "entered" if share < 0.6 else "partial"
        counted = ["election_day"] if plan == "partial" else ["election_day", "early", "absentee"]
        if plan == "verified" and n % 3 == 0:
            counted.append("provisional")
        for method in counted:
            cast = ballots.get((precinct_id, method), 0)
            for contest in contests:
                people = candidates[contest.id]
                seats = cast * contest.vote_for
                under = round(seats * rng.uniform(0.01, 0.05))
                over = round(seats * rng.uniform(0, 0.006))
                counts = _split(rng, seats - under - over, leans[contest.id])
                stored = PrecinctReturn(
                    election_id=election.id,
                    precinct_id=precinct_id,
                    contest_id=contest.id,
                    method=method,
                    revision=1,
                    ballots_cast=cast,
                    overvotes=over,
                    undervotes=under,
                    status="verified" if plan == "verified" else "entered",
                    entered_by_id=clerk,
                    entered_at=now - timedelta(minutes=rng.randrange(10, 90)),
                    verified_by_id=checker if plan == "verified" else None,
                    verified_at=now - timedelta(minutes=rng.randrange(1, 10)) if plan == "verified" else None,
                )
                session.add(stored)
                await session.flush()
                session.add_all(
                    ReturnVote(return_id=stored.id, candidate_id=c.id, votes=v)
                    for c, v in zip(people, counts, strict=True)
                )
                returns += 1
    for body, status in INCIDENTS:
        reported = now - timedelta(minutes=rng.randrange(20, 600))
        resolved = status == "resolved"
        session.add(
            Incident(
                election_id=election.id,
                precinct_id=rng.choice(precinct_ids) if precinct_ids else None,
                body=body,
                status=status,
                reported_by_id=clerk,
                created_at=reported,
                resolved_by_id=manager if resolved else None,
                resolved_at=reported + timedelta(minutes=rng.randrange(5, 60)) if resolved else None,
            )
        )
    await session.flush()
    pending = await session.scalar(
        select(func.count()).where(
            CheckIn.election_id == election.id, CheckIn.provisional_status == "pending"
        )
    )
    return {"check_ins": len(check_ins), "returns": returns, "provisional_pending": pending or 0}


def _split(rng: random.Random, total: int, lean: list[float]) -> list[int]:
    """`total` votes over the candidates, roughly by `lean`, adding up exactly."""
    if total <= 0:
        return [0] * len(lean)
    weights = [w * rng.uniform(0.85, 1.15) for w in lean]
    scale = total / sum(weights)
    counts = [int(w * scale) for w in weights]
    counts[max(range(len(counts)), key=lambda i: weights[i])] += total - sum(counts)
    return counts
