"""The canvass: every precinct's latest figures for every contest, in a stable order.

Reports and exports are built from one plain record (JSON-able lists and dicts). For an election
still counting it is collected from the tables on each request; when the election is certified it
is collected once, inside the certifying transaction, and stored in `certified_result`. From then on
every report and export reads that record, so a certified canvass prints the same bytes whatever
later happens to the voter roll, a precinct's or a party's name (they live outside the election's
lock).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text, true
from sqlalchemy.ext.asyncio import AsyncSession

from portal.db import fetch_numbers
from portal.elections.lifecycle import find_election
from portal.errors import NotFound
from portal.models import (
    Candidate,
    CertifiedResult,
    CheckIn,
    Contest,
    ContestPrecinct,
    Election,
    ElectionPrecinct,
    Party,
    Precinct,
    ReturnVote,
    User,
)
from portal.reports.canvass import Canvass, ReportCandidate, ReportContest, ReportParty, ReportPrecinct
from portal.returns.methods import counted as methods_counted
from portal.tally.queries import latest_returns
from portal.voters import counts as roll

# 1: one figure per precinct and contest (certified before voting methods were kept); 2: by method.
RECORD_FORMAT = 2


def _in_ballot_order(rows: list[list], candidates: list[dict]) -> list[list]:
    """[contest, precinct, method, ballots, over, under, status, ids, votes] rows -> the same with
    one vote vector in each contest's ballot order (a candidate without a count gets 0)."""
    order: dict[int, list[int]] = {}
    for candidate in candidates:
        order.setdefault(candidate["contest_id"], []).append(candidate["id"])
    by_id = {contest: sorted(ids) for contest, ids in order.items()}
    # Where the ids come in id order, one permutation per contest puts them in ballot order.
    permutation = {contest: [by_id[contest].index(i) for i in ids] for contest, ids in order.items()}
    found = []
    for *head, ids, votes in rows:
        contest = head[0]
        if ids == by_id.get(contest):
            vector = [votes[i] for i in permutation[contest]]
        else:
            counts = dict(zip(ids or [], votes or [], strict=True))
            vector = [counts.get(i, 0) for i in order.get(contest, [])]
        found.append([*head, vector])
    return found


def as_format_1(record: dict[str, Any]) -> dict[str, Any]:
    """A format-2 record in format 1's shape: one figure per precinct and contest, no methods, no
    provisional decisions. For elections certified before certified records were kept (migration
    0007), which are rebuilt from their tables and must print what they printed then."""
    positions: dict[int, list[int]] = {}
    for candidate in record["candidates"]:
        positions.setdefault(candidate["contest_id"], []).append(candidate["id"])
    returns: dict[tuple[int, int], list] = {}
    votes: dict[tuple[int, int], int] = {}
    for contest, precinct, _, ballots, over, under, status, vector in record["returns"]:
        found = returns.setdefault((contest, precinct), [contest, precinct, 0, 0, 0, status])
        found[2:5] = [found[2] + ballots, found[3] + over, found[4] + under]
        for candidate_id, count in zip(positions.get(contest, []), vector, strict=True):
            votes[(candidate_id, precinct)] = votes.get((candidate_id, precinct), 0) + count
    old = {key: value for key, value in record.items() if key not in ("methods", "provisionals")}
    old["format"] = 1
    old["returns"] = [returns[key] for key in sorted(returns)]
    old["votes"] = [[c, p, v] for (c, p), v in sorted(votes.items())]
    return old


def _columns(shape: type, model: type) -> list:
    return [getattr(model, f.name) for f in fields(shape)]


async def _rows(session: AsyncSession, statement) -> list[dict[str, Any]]:
    return [dict(row) for row in (await session.execute(statement)).mappings()]


async def collect_record(
    session: AsyncSession, election_id: int, *, results: bool = True, turnout: bool = True
) -> dict[str, Any]:
    """The canvass of an election as it stands now, as a plain JSON-able record in a fixed order:
    `results` (ballot, returns, votes) and `turnout` (registration, check-ins by method); a live
    report asks only for the part it prints, a certified record holds both. Registration is the
    figure frozen when the polls closed, else today's active roll."""
    election = await find_election(session, election_id)
    in_election = ElectionPrecinct.election_id == election_id
    precincts = await _rows(
        session,
        select(*_columns(ReportPrecinct, Precinct))
        .join(ElectionPrecinct, ElectionPrecinct.precinct_id == Precinct.id)
        .where(in_election)
        .order_by(Precinct.code, Precinct.id),
    )
    record: dict[str, Any] = {
        "format": RECORD_FORMAT,
        "election": {
            "id": election.id,
            "name": election.name,
            "election_date": election.election_date.isoformat(),
            "kind": election.kind,
            "status": election.status,
        },
        "certified_at": None,
        "methods": await methods_counted(session, election_id),
        "precincts": precincts,
        "contests": [],
        "candidates": [],
        "parties": [],
        "on_ballot": [],
        "returns": [],
        "votes": [],
        "registered": [],
        "check_ins": [],
        "provisionals": [],
    }
    ordering = None
    if results:
        found, ordering = await _results(session, election_id)
        record.update(found)
    try:
        if turnout:
            frozen: Mapping[int, int | None] = dict(
                (
                    await session.execute(
                        select(ElectionPrecinct.precinct_id, ElectionPrecinct.registered).where(
                            in_election, ElectionPrecinct.registered.is_not(None)
                        )
                    )
                )
                .tuples()
                .all()
            )
            if not frozen:
                frozen = await active_voters(session, election_id)
            record["registered"] = [[p["id"], frozen.get(p["id"], 0)] for p in precincts]
            record["check_ins"] = await fetch_numbers(
                session,
                select(CheckIn.precinct_id, CheckIn.method, func.count())
                .where(CheckIn.election_id == election_id, CheckIn.voided_at.is_(None))
                .group_by(CheckIn.precinct_id, CheckIn.method)
                .order_by(CheckIn.precinct_id, CheckIn.method),
            )
            # Provisional ballots by decision (format 2): accepted ones are counted, pending ones may
            # be, rejected ones were issued and are not.
            record["provisionals"] = await fetch_numbers(
                session,
                select(CheckIn.precinct_id, CheckIn.provisional_status, func.count())
                .where(
                    CheckIn.election_id == election_id,
                    CheckIn.voided_at.is_(None),
                    CheckIn.method == "provisional",
                )
                .group_by(CheckIn.precinct_id, CheckIn.provisional_status)
                .order_by(CheckIn.precinct_id, CheckIn.provisional_status),
            )
    except BaseException:
        if ordering is not None:
            ordering.cancel()  # (its thread finishes on its own; nobody waits for it)
        raise
    if ordering is not None:
        record["returns"] = await ordering
    return record


async def _results(session: AsyncSession, election_id: int) -> tuple[dict[str, Any], asyncio.Task]:
    """The ballot and the returns; the returns come as a task that puts them in ballot order in a
    thread, while the caller reads the turnout."""
    contests = await _rows(
        session,
        select(*_columns(ReportContest, Contest))
        .where(Contest.election_id == election_id)
        .order_by(Contest.ballot_order, Contest.id),
    )
    candidates = await _rows(
        session,
        select(*_columns(ReportCandidate, Candidate))
        .join(Contest, Contest.id == Candidate.contest_id)
        .where(Candidate.election_id == election_id)
        .order_by(Contest.ballot_order, Contest.id, Candidate.ballot_order, Candidate.id),
    )
    party_ids = sorted({c["party_id"] for c in candidates if c["party_id"]})
    parties = await _rows(
        session, select(*_columns(ReportParty, Party)).where(Party.id.in_(party_ids)).order_by(Party.id)
    )
    latest = latest_returns(election_id)
    # Each return's (candidate ids, votes): a lateral read of return_vote's primary key per return
    # is 3x faster than joining candidates and sorting 320,000 rows by ballot order. The two arrays
    # are built by one pass over the same rows, so they stay aligned in whatever order they come;
    # read in key order, they need no sort per return (array_agg(... ORDER BY) sorts each: 40% more).
    in_key_order = (
        select(ReturnVote.candidate_id, ReturnVote.votes)
        .where(ReturnVote.return_id == latest.c.id)
        .order_by(ReturnVote.candidate_id)
        .correlate(latest)
        .subquery()
    )
    votes = select(
        func.array_agg(in_key_order.c.candidate_id).label("ids"),
        func.array_agg(in_key_order.c.votes).label("votes"),
    ).lateral()
    by_return = (
        select(
            latest.c.contest_id,
            latest.c.precinct_id,
            latest.c.method,
            latest.c.ballots_cast,
            latest.c.overvotes,
            latest.c.undervotes,
            latest.c.status,
            votes.c.ids,
            votes.c.votes,
        )
        .join(votes, true())
        .order_by(latest.c.contest_id, latest.c.precinct_id, latest.c.method)
    )
    await session.execute(text("SET LOCAL work_mem = '64MB'"))  # the sorts stay in memory
    return {
        "contests": contests,
        "candidates": candidates,
        "parties": parties,
        "on_ballot": await fetch_numbers(
            session,
            select(ContestPrecinct.contest_id, ContestPrecinct.precinct_id)
            .join(Contest, Contest.id == ContestPrecinct.contest_id)
            .where(Contest.election_id == election_id)
            .order_by(ContestPrecinct.contest_id, ContestPrecinct.precinct_id),
        ),
        "votes": [],
    }, asyncio.create_task(  # each return with its votes, one per candidate in ballot order (format 2)
        asyncio.to_thread(_in_ballot_order, await fetch_numbers(session, by_return), candidates)
    )


async def active_voters(session: AsyncSession, election_id: int) -> dict[int, int]:
    """precinct id -> active voters on the roll now, for the election's precincts."""
    rows = await session.execute(
        select(roll.PRECINCT, roll.active_voters())
        .join(ElectionPrecinct, ElectionPrecinct.precinct_id == roll.PRECINCT)
        .where(ElectionPrecinct.election_id == election_id)
        .group_by(roll.PRECINCT)
    )
    return dict(rows.tuples().all())


# Certified canvasses already read, by (election id, SHA-256 of the record): a frozen record never
# changes (a trigger refuses it), so each worker reads and parses one once. At 2,000 precincts x 40
# candidates x 4 methods that is 0.7 s (a 5 MB JSONB value, 80,000 returns) saved per report. Kept
# small: a county has one or two elections in canvass at a time.
_CERTIFIED: OrderedDict[tuple[int, str], Canvass] = OrderedDict()
CERTIFIED_CACHE_SIZE = 4
_CERTIFIED_LOCK = threading.Lock()


async def canvass(
    session: AsyncSession, election_id: int, *, results: bool = True, turnout: bool = True
) -> Canvass:
    """The certified record when there is one, else the canvass as it stands (only the parts asked
    for: a report of votes need not count the roll)."""
    digest = await session.scalar(
        select(CertifiedResult.sha256).where(CertifiedResult.election_id == election_id)
    )
    if digest is not None:
        key = (election_id, digest)
        with _CERTIFIED_LOCK:  # (the threads of a gthread worker share it)
            found = _CERTIFIED.get(key)
        if found is None:
            record = await session.scalar(
                select(CertifiedResult.record).where(CertifiedResult.election_id == election_id)
            )
            if record is None:  # deleted with its election since the digest was read
                raise NotFound("election")
            found = await asyncio.to_thread(Canvass.from_record, record)  # (pure Python: off the loop)
            found.sha256 = digest
        with _CERTIFIED_LOCK:
            _CERTIFIED[key] = found
            _CERTIFIED.move_to_end(key)
            while len(_CERTIFIED) > CERTIFIED_CACHE_SIZE:
                _CERTIFIED.popitem(last=False)
        return found
    record = await collect_record(session, election_id, results=results, turnout=turnout)
    if record["election"]["status"] == "certified":  # certified before records were kept (0007)
        record = as_format_1(record)  # and before methods: it prints as it always did
    found = await asyncio.to_thread(Canvass.from_record, record)  # (pure Python: off the loop)
    if found.election.status == "certified":
        election = await find_election(session, election_id)
        found.certified_at = election.updated_at
    return found


def canonical_json(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


async def freeze_certified_canvass(
    session: AsyncSession, *, election: Election, actor: User
) -> CertifiedResult:
    """Called inside the certifying transaction, after the status is set: store the canvass as it
    now stands, with its SHA-256, and audit it."""
    from portal.audit.queries import chain_head, record_event

    record = await collect_record(session, election.id)
    certified_at = datetime.now(UTC).replace(microsecond=0)
    record["certified_at"] = certified_at.isoformat()
    head = await chain_head(session)  # the audit chain as it stood: anchored in the record's hash
    record["audit_head"] = {"event": head.event, "hash": head.hash} if head else None
    digest = hashlib.sha256(canonical_json(record)).hexdigest()
    result = CertifiedResult(
        election_id=election.id,
        certified_at=certified_at,
        certified_by_id=actor.id,
        record=record,
        sha256=digest,
    )
    session.add(result)
    await session.flush()
    await record_event(
        session,
        actor=actor,
        action="certify",
        entity="certified_result",
        entity_id=election.id,
        after={
            "sha256": digest,
            "certified_at": record["certified_at"],
            "precincts": len(record["precincts"]),
            "contests": len(record["contests"]),
            "returns": len(record["returns"]),
        },
    )
    return result


async def certified_results_intact(session: AsyncSession) -> list[str]:
    """Problems with stored certified canvasses: a record whose SHA-256 no longer matches its
    content or its certification audit event (empty when every record is intact)."""
    from portal.audit.queries import Head, head_problem
    from portal.models import AuditEvent

    problems = []
    stored = (await session.scalars(select(CertifiedResult).order_by(CertifiedResult.election_id))).all()
    for result in stored:
        if hashlib.sha256(canonical_json(result.record)).hexdigest() != result.sha256:
            problems.append(f"election {result.election_id}: certified record does not match its SHA-256")
        audited = await session.scalar(
            select(AuditEvent.after["sha256"].astext).where(
                AuditEvent.entity == "certified_result",
                AuditEvent.entity_id == str(result.election_id),
                AuditEvent.action == "certify",
            )
        )
        if audited != result.sha256:
            problems.append(f"election {result.election_id}: certified record differs from its audit event")
        anchored = result.record.get("audit_head")  # (records certified before 0008 carry none)
        if anchored:
            problem = await head_problem(session, Head(anchored["event"], anchored["hash"]))
            if problem:
                problems.append(
                    f"election {result.election_id}: the audit head in its certified record: {problem}"
                )
    return problems
