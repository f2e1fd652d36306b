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


def canvass_csv(canvass: Canvass) -> str:
    if canvass.counted:
        return _canvass_by_method_csv(canvass)
    parties: dict[int | None, str] = {p.id: p.abbreviation for p in canvass.parties}
    lines = []
    for precinct in canvass.precincts:
        for contest in canvass.contests:
            totals = canvass.totals.get((contest.id, precinct.id))
            if totals is None:
                continue
            ballots, over, under, status = totals
            rows = [
                (c.ballot_name, parties.get(c.party_id, ""), canvass.votes.get((c.id, precinct.id), 0))
                for c in canvass.candidates[contest.id]
            ]
            rows += [("Overvotes", "", over), ("Undervotes", "", under), ("Ballots cast", "", ballots)]
            for choice, party, votes in rows:
                lines.append(
                    (precinct.code, precinct.name, contest.office_title, choice, party, votes, status)
                )
    return _csv(CANVASS_HEADER, lines)


def _canvass_by_method_csv(canvass: Canvass) -> str:
    parties: dict[int | None, str] = {p.id: p.abbreviation for p in canvass.parties}
    rows = []
    for precinct in canvass.precincts:
        for contest in canvass.contests:
            combined = canvass.totals.get((contest.id, precinct.id))
            if combined is None:
                continue
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
                rows += [
                    (*head, "Overvotes", "", over, status),
                    (*head, "Undervotes", "", under, status),
                    (*head, "Ballots cast", "", ballots, status),
                ]
    return _csv(METHOD_HEADER, rows)


def _csv(header: list[str], rows) -> str:
    return csv_text(header, rows, lineterminator="\n")


def summary_csv(canvass: Canvass) -> str:
    if canvass.counted:
        return _summary_by_method_csv(canvass)
    parties: dict[int | None, str] = {p.id: p.abbreviation for p in canvass.parties}
    rows = []
    for contest in canvass.contests:
        people = canvass.candidates[contest.id]
        candidate_votes = sum(canvass.candidate_total(c.id) for c in people)
        for c in people:
            votes = canvass.candidate_total(c.id)
            share = percent_figure(votes, candidate_votes, places=2)
            rows.append((contest.office_title, c.ballot_name, parties.get(c.party_id, ""), votes, share))
        ballots, over, under = canvass.contest_total(contest.id)
        rows += [
            (contest.office_title, "Overvotes", "", over, ""),
            (contest.office_title, "Undervotes", "", under, ""),
            (contest.office_title, "Ballots cast", "", ballots, ""),
        ]
    return _csv(["contest", "choice", "party", "votes", "percent"], rows)


def _summary_by_method_csv(canvass: Canvass) -> str:
    """Every choice's votes by method and in total; the percent is of the total's candidate votes."""
    parties: dict[int | None, str] = {p.id: p.abbreviation for p in canvass.parties}
    rows = []
    for contest in canvass.contests:
        people = canvass.candidates[contest.id]
        candidate_votes = sum(canvass.candidate_total(c.id) for c in people)
        for c in people:
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
            votes = canvass.candidate_total(c.id)
            share = percent_figure(votes, candidate_votes, places=2)
            rows.append((contest.office_title, TOTAL, c.ballot_name, party, votes, share))
        for method in [*canvass.counted, TOTAL]:
            ballots, over, under = (
                canvass.contest_total(contest.id)
                if method == TOTAL
                else canvass.contest_method_total(contest.id, method)
            )
            rows += [
                (contest.office_title, method, "Overvotes", "", over, ""),
                (contest.office_title, method, "Undervotes", "", under, ""),
                (contest.office_title, method, "Ballots cast", "", ballots, ""),
            ]
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
