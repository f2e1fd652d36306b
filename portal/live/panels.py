"""The live panels of an election, rendered as HTML partials (the same bytes for everyone).

The figures are read on the event loop; the templates are rendered in a thread (`asyncio.to_thread`
carries the app context along), so a large panel holds up no request meanwhile."""

from __future__ import annotations

import asyncio

from flask import render_template

from portal.db import reading
from portal.incidents.queries import incident_feed
from portal.returns.queries import precinct_statuses
from portal.tally.queries import contest_tallies, election_turnout


async def render_panels(election_id: int, panels: set[str] | None) -> dict[str, str]:
    """{event name: html} for the named panels ("contest-<id>", "turnout", "reporting"), or all."""
    wanted = panels or {"contests", "turnout", "reporting", "incidents"}
    templates: dict[str, tuple[str, dict]] = {}  # event -> (template, its context)
    async with reading() as db:
        if wanted & {"contests", "turnout"} or any(p.startswith("contest-") for p in wanted):
            tallies = await contest_tallies(db, election_id)
            for tally in tallies:
                event = f"contest-{tally.contest.id}"
                if "contests" in wanted or event in wanted:
                    templates[event] = ("tally/_contest_panel.html", {"tally": tally})
        if "turnout" in wanted:
            turnout = await election_turnout(db, election_id)
            templates["turnout"] = ("tally/_turnout_panel.html", {"turnout": turnout})
        if "incidents" in wanted:
            feed = await incident_feed(db, election_id)
            templates["incidents"] = ("incidents/_feed.html", {"feed": feed})
        if "reporting" in wanted:
            statuses = await precinct_statuses(db, election_id)
            templates["reporting"] = ("tally/_reporting_panel.html", {"statuses": statuses})

    def render_all() -> dict[str, str]:
        return {event: render_template(name, **context) for event, (name, context) in templates.items()}

    return await asyncio.to_thread(render_all)
