"""CSV exports of the canvass, formula-safe and in a fixed order (a certified election's export is
the same bytes every time)."""

from __future__ import annotations

import csv
import io

from portal.reports.queries import Canvass
from portal.voters.queries import neutralise

CANVASS_HEADER = ["precinct", "precinct_name", "contest", "choice", "party", "votes", "status"]


def canvass_csv(canvass: Canvass) -> str:
    parties = {p.id: p.abbreviation for p in canvass.parties}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CANVASS_HEADER)
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
                writer.writerow(
                    [
                        neutralise(v)
                        for v in (
                            precinct.code,
                            precinct.name,
                            contest.office_title,
                            choice,
                            party,
                            votes,
                            status,
                        )
                    ]
                )
    return buffer.getvalue()
