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
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from operator import add
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import func, select, text, true
from sqlalchemy.ext.asyncio import AsyncSession

from portal.db import fetch_numbers
from portal.formatting import number
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
from portal.returns.methods import LABELS as METHOD_LABELS
from portal.returns.methods import counted as methods_counted
from portal.returns.methods import counting_group
from portal.returns.queries import PrecinctStatus
from portal.tally.queries import CandidateTally, ContestTally, latest_returns, rank_candidates
from portal.voters import counts as roll

SMALL = [number(v) for v in range(10_000)]  # most figures of a canvass, formatted once

# 1: one figure per precinct and contest (certified before voting methods were kept); 2: by method.
RECORD_FORMAT = 2


@dataclass(frozen=True)
class ReportElection:
    id: int
    name: str
    election_date: date
    kind: str
    status: str


@dataclass(frozen=True)
class ReportContest:
    id: int
    office_title: str
    vote_for: int
    ballot_order: int
    is_measure: bool


@dataclass(frozen=True)
class ReportCandidate:
    id: int
    contest_id: int
    code: str
    ballot_name: str
    party_id: int | None
    ballot_order: int
    status: str
    write_in: bool


@dataclass(frozen=True)
class ReportParty:
    id: int
    name: str
    abbreviation: str
    colour: str


@dataclass(frozen=True)
class ReportPrecinct:
    id: int
    code: str
    name: str


@dataclass(frozen=True)
class Reconciled:
    """One precinct and method: check-ins against ballots cast."""

    precinct: ReportPrecinct
    method: str  # "" for every method together (a format-1 record)
    checked_in: int  # live check-ins whose ballots the method counts
    expected: int  # of those, ballots that count: provisional ones only once accepted
    pending: int  # provisional ballots not yet decided
    rejected: int  # provisional ballots issued and not counted
    cast: int | None  # ballots cast in the returns; None while none is entered

    @property
    def difference(self) -> int | None:
        return None if self.cast is None else self.cast - self.expected


@dataclass
class Canvass:
    election: ReportElection
    contests: list[ReportContest]
    candidates: dict[int, list[ReportCandidate]]  # contest id -> candidates in ballot order
    parties: list[ReportParty]
    precincts: list[ReportPrecinct]  # by code
    on_ballot: set[tuple[int, int]]  # (contest id, precinct id)
    votes: dict[tuple[int, int], int] = field(default_factory=dict)  # (candidate id, precinct id) -> votes
    # (contest id, precinct id) -> (ballots cast, overvotes, undervotes, return status)
    totals: dict[tuple[int, int], tuple[int, int, int, str]] = field(default_factory=dict)
    registered: dict[int, int] = field(default_factory=dict)  # precinct id -> active voters
    methods: dict[int, dict[str, int]] = field(default_factory=dict)  # precinct id -> {method: check-ins}
    certified_at: datetime | None = None
    # Voting methods counted, in order; empty for a format-1 record (one figure, printed as before).
    counted: list[str] = field(default_factory=list)
    # (contest id, precinct id, method) -> (ballots cast, overvotes, undervotes, return status)
    split_totals: dict[tuple[int, int, str], tuple[int, int, int, str]] = field(default_factory=dict)
    # (contest id, precinct id, method) -> votes, one per candidate in ballot order
    split_votes: dict[tuple[int, int, str], list[int]] = field(default_factory=dict)
    # (contest id, precinct id) -> every method's votes added up, one per candidate in ballot order
    combined_votes: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    position: dict[int, int] = field(default_factory=dict)  # candidate id -> its place in its contest
    sha256: str | None = None  # a certified record's digest (its exports can be kept, like it)
    # precinct id -> {pending|accepted|rejected: provisional check-ins}; None in a format-1 record
    provisionals: dict[int, dict[str, int]] | None = None

    _candidate_totals: dict[int, int] = field(default_factory=dict)
    _contest_totals: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    _candidate_method_totals: dict[tuple[int, str], int] = field(default_factory=dict)
    _contest_method_totals: dict[tuple[int, str], tuple[int, int, int]] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Canvass:
        election = dict(record["election"])
        election["election_date"] = date.fromisoformat(election["election_date"])
        contests = [ReportContest(**row) for row in record["contests"]]
        candidates: dict[int, list[ReportCandidate]] = {c.id: [] for c in contests}
        for row in record["candidates"]:
            candidates[row["contest_id"]].append(ReportCandidate(**row))
        methods: dict[int, dict[str, int]] = {}
        for precinct_id, method, count in record["check_ins"]:
            methods.setdefault(precinct_id, {})[method] = count
        certified_at = record.get("certified_at")
        counted, split_totals, split_votes, combined_votes = [], {}, {}, {}
        if record["format"] >= 2:
            counted = list(record["methods"])
            for c, p, m, b, o, u, s, v in record["returns"]:
                split_totals[(c, p, m)] = (b, o, u, s)
                split_votes[(c, p, m)] = v
            totals, combined_votes = _combined(counted, split_totals, split_votes)
            votes = {}  # per candidate only where a one-method canvass prints as format 1 did
            if len(counted) == 1:
                for (contest_id, precinct_id), vector in combined_votes.items():
                    for candidate, count in zip(candidates[contest_id], vector, strict=True):
                        votes[(candidate.id, precinct_id)] = count
        else:
            totals = {(c, p): (b, o, u, s) for c, p, b, o, u, s in record["returns"]}
            votes = {(c, p): v for c, p, v in record["votes"]}
        canvass = cls(
            election=ReportElection(**election),
            contests=contests,
            candidates=candidates,
            parties=[ReportParty(**row) for row in record["parties"]],
            precincts=[ReportPrecinct(**row) for row in record["precincts"]],
            on_ballot={(c, p) for c, p in record["on_ballot"]},
            votes=votes,
            totals=totals,
            registered=dict(record["registered"]),
            methods=methods,
            certified_at=datetime.fromisoformat(certified_at) if certified_at else None,
            counted=counted,
            split_totals=split_totals,
            split_votes=split_votes,
            combined_votes=combined_votes,
            position={c.id: i for people in candidates.values() for i, c in enumerate(people)},
        )
        if "provisionals" in record:
            canvass.provisionals = {}
            for precinct_id, status, count in record["provisionals"]:
                canvass.provisionals.setdefault(precinct_id, {})[status] = count
        canvass.add_up()
        return canvass

    def add_up(self) -> None:
        """Totals once, not once per footer cell (the canvass has thousands of rows)."""
        for (candidate_id, _), votes in self.votes.items():
            self._candidate_totals[candidate_id] = self._candidate_totals.get(candidate_id, 0) + votes
        for (contest_id, _), (ballots, over, under, _) in self.totals.items():
            b, o, u = self._contest_totals.get(contest_id, (0, 0, 0))
            self._contest_totals[contest_id] = (b + ballots, o + over, u + under)
        by_method: dict[tuple[int, str], list[int]] = {}
        for (contest_id, _, method), vector in self.split_votes.items():
            found = by_method.get((contest_id, method))
            by_method[(contest_id, method)] = vector if found is None else list(map(add, found, vector))
        for (contest_id, method), vector in by_method.items():
            for candidate, votes in zip(self.candidates[contest_id], vector, strict=True):
                self._candidate_method_totals[(candidate.id, method)] = votes
        if self.counted and not self.votes:  # (a canvass by method keeps no per-candidate dict)
            for (candidate_id, _), votes in self._candidate_method_totals.items():
                self._candidate_totals[candidate_id] = self._candidate_totals.get(candidate_id, 0) + votes
        for (contest_id, _, method), (ballots, over, under, _) in self.split_totals.items():
            b, o, u = self._contest_method_totals.get((contest_id, method), (0, 0, 0))
            self._contest_method_totals[(contest_id, method)] = (b + ballots, o + over, u + under)

    def table_rows(
        self, contest_id: int, candidates: list[ReportCandidate], with_totals: bool
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
                cells = [number(self.votes.get((c.id, precinct.id), 0)) for c in candidates]
                if with_totals:
                    cells += [number(totals[1]), number(totals[2]), number(totals[0])]
            rows.append((precinct.code, Markup("<td>" + "</td><td>".join(cells) + "</td>")))  # noqa: S704 - digits only
        return rows

    def method_rows(self, contest_id: int, candidates: list[ReportCandidate], with_totals: bool) -> Markup:
        """A canvass-by-method table's body: per precinct one row per method counted and a
        subtotal, in one <tbody> each (a printed page keeps a precinct's rows together). Built as
        one string: at 2,000 precincts x 4 methods a template loop is the slowest part."""
        labels = [(m, escape(METHOD_LABELS[m])) for m in self.counted]
        span = len(self.counted) + 1
        first = self.position[candidates[0].id] if candidates else 0
        last = first + len(candidates)
        dash = "<td>—</td>" * (len(candidates) + (3 if with_totals else 0))
        split_totals, split_votes, combined = self.split_totals, self.split_votes, self.combined_votes

        def cells(totals, vector) -> str:
            figures = vector[first:last]
            if with_totals:
                figures = [*figures, totals[1], totals[2], totals[0]]
            return (
                "<td>" + "</td><td>".join([SMALL[v] if v < 10_000 else number(v) for v in figures]) + "</td>"
            )

        parts = []
        for precinct in self.precincts:
            if (contest_id, precinct.id) not in self.on_ballot:
                continue
            rows = []
            for method, label in labels:
                key = (contest_id, precinct.id, method)
                totals = split_totals.get(key)
                rows.append(
                    f"<td>{label}</td>" + (dash if totals is None else cells(totals, split_votes[key]))
                )
            totals = self.totals.get((contest_id, precinct.id))
            subtotal = dash if totals is None else cells(totals, combined[(contest_id, precinct.id)])
            code = escape(precinct.code)
            head = f'<th scope="rowgroup" rowspan="{span}" class="fw-normal font-monospace">{code}</th>'
            parts.append(
                f'<tbody class="canvass-precinct"><tr>{head}'
                + "</tr><tr>".join(rows)
                + f'</tr><tr class="subtotal"><td>Subtotal</td>{subtotal}</tr></tbody>'
            )
        return Markup("\n".join(parts))  # noqa: S704 - names escaped, figures are digits

    def outside_provisionals(self) -> dict[str, int]:
        """Provisional ballots by decision of voters registered outside the election's precincts."""
        inside = {p.id for p in self.precincts}
        found: dict[str, int] = {}
        for precinct_id, counts in (self.provisionals or {}).items():
            if precinct_id not in inside:
                for status, count in counts.items():
                    found[status] = found.get(status, 0) + count
        return found

    def provisional_total(self, status: str) -> int:
        return sum(counts.get(status, 0) for counts in (self.provisionals or {}).values())

    def reconciliation(self) -> list[Reconciled]:
        """Per precinct and method counted: voters checked in whose ballots the method counts,
        against the ballots cast its returns give (the most any contest on the ballot gives). A
        provisional ballot counts once accepted; pending ones are shown beside. A format-1 record
        has one row per precinct for every method together."""
        methods = self.counted or [""]
        issued: dict[tuple[int, str], int] = {}
        for precinct_id, counts in self.methods.items():
            for check_in_method, count in counts.items():
                key = (precinct_id, counting_group(check_in_method, self.counted) if self.counted else "")
                issued[key] = issued.get(key, 0) + count
        cast: dict[tuple[int, str], int] = {}
        if self.counted:
            for (_, precinct_id, method), (ballots, *_) in self.split_totals.items():
                cast[(precinct_id, method)] = max(cast.get((precinct_id, method), 0), ballots)
        else:
            for (_, precinct_id), (ballots, *_) in self.totals.items():
                cast[(precinct_id, "")] = max(cast.get((precinct_id, ""), 0), ballots)
        rows = []
        for precinct in self.precincts:
            decided = (self.provisionals or {}).get(precinct.id, {})
            for method in methods:
                checked_in = issued.get((precinct.id, method), 0)
                pending = rejected = 0
                if method == "provisional" and self.provisionals is not None:
                    pending, rejected = decided.get("pending", 0), decided.get("rejected", 0)
                rows.append(
                    Reconciled(
                        precinct,
                        method,
                        checked_in,
                        checked_in - pending - rejected,
                        pending,
                        rejected,
                        cast.get((precinct.id, method)),
                    )
                )
        return rows

    def candidate_method_total(self, candidate_id: int, method: str) -> int:
        return self._candidate_method_totals.get((candidate_id, method), 0)

    def contest_method_total(self, contest_id: int, method: str) -> tuple[int, int, int]:
        """(ballots cast, overvotes, undervotes) of one method over every precinct that reported it."""
        return self._contest_method_totals.get((contest_id, method), (0, 0, 0))

    def precincts_on_ballot(self, contest_id: int) -> int:
        return sum(1 for c, _ in self.on_ballot if c == contest_id)

    def contest_total(self, contest_id: int) -> tuple[int, int, int]:
        """(ballots cast, overvotes, undervotes) over every precinct that reported."""
        return self._contest_totals.get(contest_id, (0, 0, 0))

    def candidate_total(self, candidate_id: int) -> int:
        return self._candidate_totals.get(candidate_id, 0)

    def checked_in(self, precinct_id: int) -> int:
        """Turnout: live check-ins but rejected provisional ballots (issued, not counted), as the
        live panels count it (a format-1 record knows no decisions)."""
        rejected = (self.provisionals or {}).get(precinct_id, {}).get("rejected", 0)
        return sum(self.methods.get(precinct_id, {}).values()) - rejected

    def outside_checked_in(self) -> int:
        """Turnout of voters registered outside the election's precincts (rejected ones left out)."""
        return sum(self.outside_check_ins().values()) - self.outside_provisionals().get("rejected", 0)

    def outside_check_ins(self) -> dict[str, int]:
        """Check-ins of voters registered outside the election's precincts (provisional ballots),
        by method: counted in the election's turnout, in no precinct's row."""
        inside = {p.id for p in self.precincts}
        found: dict[str, int] = {}
        for precinct_id, counts in self.methods.items():
            if precinct_id not in inside:
                for method, count in counts.items():
                    found[method] = found.get(method, 0) + count
        return found

    def method_total(self, method: str) -> int:
        return sum(counts.get(method, 0) for counts in self.methods.values())

    def total_checked_in(self) -> int:
        return sum(sum(counts.values()) for counts in self.methods.values()) - self.provisional_total(
            "rejected"
        )

    def total_registered(self) -> int:
        return sum(self.registered.values())

    def tallies(self) -> list[ContestTally]:
        """Per contest: candidates with votes, share and leaders, ballots, over/undervotes, and how
        many precincts reported and were verified (the live tally's shapes, from this canvass)."""
        parties = {p.id: p for p in self.parties}
        found = []
        for contest in self.contests:
            ballots, over, under = self.contest_total(contest.id)
            statuses = [s for (c, _), (*_, s) in self.totals.items() if c == contest.id]
            tally = ContestTally(
                contest,
                [
                    CandidateTally(c, parties.get(c.party_id), self.candidate_total(c.id))
                    for c in self.candidates[contest.id]
                ],
                ballots_cast=ballots,
                overvotes=over,
                undervotes=under,
                precincts=self.precincts_on_ballot(contest.id),
                entered=len(statuses) - statuses.count("verified"),
                verified=statuses.count("verified"),
                methods=list(self.counted),
                ballots_by_method={m: self.contest_method_total(contest.id, m)[0] for m in self.counted},
            )
            for row in tally.candidates:
                row.by_method = {m: self.candidate_method_total(row.candidate.id, m) for m in self.counted}
            rank_candidates(tally)
            found.append(tally)
        return found

    def precinct_statuses(self) -> list[PrecinctStatus]:
        """Every participating precinct with how many of its contests are entered and verified."""
        found = []
        for precinct in self.precincts:
            contests = [c.id for c in self.contests if (c.id, precinct.id) in self.on_ballot]
            if not self.counted:
                states = [self.totals[k][3] for c in contests if (k := (c, precinct.id)) in self.totals]
                found.append(
                    PrecinctStatus(precinct, len(contests), states.count("entered"), states.count("verified"))
                )
                continue
            by_method = {}
            for method in self.counted:
                states = [
                    self.split_totals[key][3]
                    for c in contests
                    if (key := (c, precinct.id, method)) in self.split_totals
                ]
                by_method[method] = (states.count("entered"), states.count("verified"))
            found.append(
                PrecinctStatus(
                    precinct,
                    len(contests),
                    sum(e for e, _ in by_method.values()),
                    sum(v for _, v in by_method.values()),
                    len(self.counted),
                    by_method,
                )
            )
        return found

    @property
    def status(self) -> str:
        """NIST SP 1500-100 ResultsStatus."""
        if self.election.status == "certified":
            return "certified"
        if self.counted:
            complete = set(self.totals) >= self.on_ballot and all(
                s != "partial" for key, (*_, s) in self.totals.items() if key in self.on_ballot
            )
        else:
            complete = set(self.totals) >= self.on_ballot
        return "unofficial-complete" if complete else "unofficial-partial"


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


def _combined(counted: list[str], split_totals: dict, split_votes: dict) -> tuple[dict, dict]:
    """Per precinct and contest, the methods added up: (totals, vote vectors). The status is
    "verified" when every counted method is, "entered" when every method is in, else "partial"."""
    totals: dict[tuple[int, int], tuple[int, int, int, str]] = {}
    states: dict[tuple[int, int], list[str]] = {}
    votes: dict[tuple[int, int], list[int]] = {}
    for (contest_id, precinct_id, method), (ballots, over, under, status) in split_totals.items():
        key = (contest_id, precinct_id)
        vector = split_votes[(contest_id, precinct_id, method)]
        found = totals.get(key)
        if found is None:
            totals[key], states[key], votes[key] = (ballots, over, under, ""), [status], vector
        else:
            totals[key] = (found[0] + ballots, found[1] + over, found[2] + under, "")
            states[key].append(status)
            votes[key] = list(map(add, votes[key], vector))
    for key, found in states.items():
        if len(found) < len(counted):
            status = "partial"
        else:
            status = "verified" if all(s == "verified" for s in found) else "entered"
        totals[key] = (*totals[key][:3], status)
    return totals, votes


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
    election = await session.get(Election, election_id)
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
    if results:
        record.update(await _results(session, election_id))
    if turnout:
        frozen = dict(
            (
                await session.execute(
                    select(ElectionPrecinct.precinct_id, ElectionPrecinct.registered).where(
                        in_election, ElectionPrecinct.registered.is_not(None)
                    )
                )
            ).all()
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
    return record


async def _results(session: AsyncSession, election_id: int) -> dict[str, Any]:
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
        # Each return with its votes, one per candidate in the contest's ballot order (format 2).
        "returns": await asyncio.to_thread(
            _in_ballot_order, await fetch_numbers(session, by_return), candidates
        ),
        "votes": [],
    }


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
        election = await session.get(Election, election_id)
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
