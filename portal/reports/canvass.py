"""The canvass as the reports read it: `Canvass`, built from the plain record (format 1 or 2) that
`queries.collect_record` collects or a certified election keeps, with its totals added up once, the
canvass tables' rows, the reconciliation, the tallies and the precincts' statuses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from operator import add
from typing import Any

from markupsafe import Markup, escape

from portal.formatting import number
from portal.returns.methods import LABELS as METHOD_LABELS
from portal.returns.methods import counting_group
from portal.returns.queries import PrecinctStatus
from portal.tally.queries import CandidateTally, ContestTally, rank_candidates

SMALL = [number(v) for v in range(10_000)]  # most figures of a canvass, formatted once


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
        combined_votes: dict[tuple[int, int], list[int]]
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
        parties: dict[int | None, ReportParty] = {p.id: p for p in self.parties}
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
    for key, statuses in states.items():
        if len(statuses) < len(counted):
            status = "partial"
        else:
            status = "verified" if all(s == "verified" for s in statuses) else "entered"
        totals[key] = (*totals[key][:3], status)
    return totals, votes
