"""The live panels of an election, rendered as HTML partials (the same bytes for everyone)."""

from __future__ import annotations

from flask import render_template

from portal.db import reading
from portal.incidents.queries import incident_feed
from portal.returns.queries import precinct_statuses
from portal.tally.queries import contest_tallies, election_turnout


async def render_panels(election_id: int, panels: set[str] | None) -> dict[str, str]:
    """{event name: html} for the named panels ("contest-<id>", "turnout", "reporting"), or all."""
    wanted = panels or {"contests", "turnout", "reporting", "incidents"}
    rendered: dict[str, str] = {}
    async with reading() as db:
        if wanted & {"contests", "turnout"} or any(p.startswith("contest-") for p in wanted):
            tallies = await contest_tallies(db, election_id)
            for tally in tallies:
                event = f"contest-{tally.contest.id}"
                if "contests" in wanted or event in wanted:
                    rendered[event] = render_template("tally/_contest_panel.html", tally=tally)
        if "turnout" in wanted:
            turnout = await election_turnout(db, election_id)
            rendered["turnout"] = render_template("tally/_turnout_panel.html", turnout=turnout)
        if "incidents" in wanted:
            feed = await incident_feed(db, election_id)
            rendered["incidents"] = render_template("incidents/_feed.html", feed=feed)
        if "reporting" in wanted:
            statuses = await precinct_statuses(db, election_id)
            rendered["reporting"] = render_template("tally/_reporting_panel.html", statuses=statuses)
    return rendered
