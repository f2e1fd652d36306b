"""CSV exports of the canvass, formula-safe and in a fixed order (a certified election's export is
the same bytes every time)."""

from __future__ import annotations

from portal.csvfiles import csv_text
from portal.formatting import percent_figure
from portal.models import CHECK_IN_METHODS
from portal.reports.canvass import Canvass

OUTSIDE = "Voters outside the election's precincts"
CANVASS_HEADER = ["precinct", "precinct_name", "contest", "choice", "party", "votes", "status"]
# By voting method (record format 2): one row per method, then the precinct's "total".
METHOD_HEADER = ["precinct", "precinct_name", "contest", "method", "choice", "party", "votes", "status"]
TOTAL = "total"


def _parties(canvass: Canvass) -> dict[int | None, str]:
    """Party abbreviations by id."""
    return {p.id: p.abbreviation for p in canvass.parties}


def _reported(canvass: Canvass):
    """(precinct, contest, its totals there) for every contest with returns in every precinct, in order."""
    for precinct in canvass.precincts:
        for contest in canvass.contests:
            totals = canvass.totals.get((contest.id, precinct.id))
            if totals is not None:
                yield precinct, contest, totals


def _ballot_rows(head: tuple, over: int, under: int, ballots: int, tail: tuple) -> list[tuple]:
    """The rows after a contest's choices: its overvotes, undervotes and ballots cast."""
    return [
        (*head, "Overvotes", "", over, *tail),
        (*head, "Undervotes", "", under, *tail),
        (*head, "Ballots cast", "", ballots, *tail),
    ]


def canvass_csv(canvass: Canvass) -> str:
    if canvass.counted:
        return _canvass_by_method_csv(canvass)
    parties = _parties(canvass)
    rows = []
    for precinct, contest, (ballots, over, under, status) in _reported(canvass):
        head = (precinct.code, precinct.name, contest.office_title)
        rows += [
            (
                *head,
                c.ballot_name,
                parties.get(c.party_id, ""),
                canvass.votes.get((c.id, precinct.id), 0),
                status,
            )
            for c in canvass.candidates[contest.id]
        ]
        rows += _ballot_rows(head, over, under, ballots, (status,))
    return _csv(CANVASS_HEADER, rows)


def _canvass_by_method_csv(canvass: Canvass) -> str:
    parties = _parties(canvass)
    rows = []
    for precinct, contest, combined in _reported(canvass):
        people = canvass.candidates[contest.id]
        for method in [*canvass.counted, TOTAL]:
            if method == TOTAL:
                totals, votes = combined, canvass.combined_votes[(contest.id, precinct.id)]
            else:
                split = canvass.split_totals.get((contest.id, precinct.id, method))
                if split is None:
                    continue
                totals = split
                votes = canvass.split_votes[(contest.id, precinct.id, method)]
            ballots, over, under, status = totals
            head = (precinct.code, precinct.name, contest.office_title, method)
            rows += [
                (*head, c.ballot_name, parties.get(c.party_id, ""), count, status)
                for c, count in zip(people, votes, strict=True)
            ]
            rows += _ballot_rows(head, over, under, ballots, (status,))
    return _csv(METHOD_HEADER, rows)


def _csv(header: list[str], rows) -> str:
    return csv_text(header, rows, lineterminator="\n")


def _candidate_shares(canvass: Canvass, contest):
    """(candidate, its votes in all, its percent of the contest's candidate votes) in ballot order."""
    people = canvass.candidates[contest.id]
    candidate_votes = sum(canvass.candidate_total(c.id) for c in people)
    for c in people:
        votes = canvass.candidate_total(c.id)
        yield c, votes, percent_figure(votes, candidate_votes, places=2)


def summary_csv(canvass: Canvass) -> str:
    if canvass.counted:
        return _summary_by_method_csv(canvass)
    parties = _parties(canvass)
    rows = []
    for contest in canvass.contests:
        for c, votes, share in _candidate_shares(canvass, contest):
            rows.append((contest.office_title, c.ballot_name, parties.get(c.party_id, ""), votes, share))
        ballots, over, under = canvass.contest_total(contest.id)
        rows += _ballot_rows((contest.office_title,), over, under, ballots, ("",))
    return _csv(["contest", "choice", "party", "votes", "percent"], rows)


def _summary_by_method_csv(canvass: Canvass) -> str:
    """Every choice's votes by method and in total; the percent is of the total's candidate votes."""
    parties = _parties(canvass)
    rows = []
    for contest in canvass.contests:
        for c, votes, share in _candidate_shares(canvass, contest):
            party = parties.get(c.party_id, "")
            for method in canvass.counted:
                rows.append(
                    (
                        contest.office_title,
                        method,
                        c.ballot_name,
                        party,
                        canvass.candidate_method_total(c.id, method),
                        "",
                    )
                )
            rows.append((contest.office_title, TOTAL, c.ballot_name, party, votes, share))
        for method in [*canvass.counted, TOTAL]:
            ballots, over, under = (
                canvass.contest_total(contest.id)
                if method == TOTAL
                else canvass.contest_method_total(contest.id, method)
            )
            rows += _ballot_rows((contest.office_title, method), over, under, ballots, ("",))
    return _csv(["contest", "method", "choice", "party", "votes", "percent"], rows)


def turnout_csv(canvass: Canvass) -> str:
    """Check-ins by method per precinct; a format-2 record adds provisional ballots by decision."""
    keys = CHECK_IN_METHODS
    decisions = ("accepted", "pending", "rejected") if canvass.provisionals is not None else ()
    rows = []
    for precinct in canvass.precincts:
        counts = canvass.methods.get(precinct.id, {})
        decided = (canvass.provisionals or {}).get(precinct.id, {})
        registered, total = canvass.registered.get(precinct.id, 0), canvass.checked_in(precinct.id)
        rows.append(
            (
                precinct.code,
                precinct.name,
                registered,
                *(counts.get(k, 0) for k in keys),
                *(decided.get(d, 0) for d in decisions),
                total,
                percent_figure(total, registered),
            )
        )
    outside = canvass.outside_check_ins()
    if outside:
        rows.append(
            (
                "",
                OUTSIDE,
                "",
                *(outside.get(k, 0) for k in keys),
                *(canvass.outside_provisionals().get(d, 0) for d in decisions),
                canvass.outside_checked_in(),
                "",
            )
        )
    header = ["precinct", "precinct_name", "registered", *keys, *(f"provisional_{d}" for d in decisions)]
    return _csv([*header, "checked_in", "percent"], rows)


def reconciliation_csv(canvass: Canvass) -> str:
    """Per precinct and method: check-ins against ballots cast (blank while no return is in)."""
    rows = [
        (
            row.precinct.code,
            row.precinct.name,
            row.method or "all",
            row.checked_in,
            row.pending,
            row.rejected,
            row.expected,
            "" if row.cast is None else row.cast,
            "" if row.difference is None else row.difference,
        )
        for row in canvass.reconciliation()
    ]
    header = [
        "precinct",
        "precinct_name",
        "method",
        "checked_in",
        "provisional_pending",
        "provisional_rejected",
        "counted_check_ins",
        "ballots_cast",
        "difference",
    ]
    return _csv(header, rows)
