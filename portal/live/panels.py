"""The live panels of an election, rendered as HTML partials (the same bytes for everyone).

The figures are read on the event loop; the templates are rendered in a thread (`asyncio.to_thread`
carries the app context along), so a large panel holds up no request meanwhile."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from flask import current_app, render_template

from portal.db import reading
from portal.incidents.queries import incident_panels
from portal.returns.queries import precinct_statuses
from portal.tally.queries import contest_tallies, election_turnout

ALL = "*"
# The incident panels: the feed, the resolve list (only managers' and admins' pages swap it in) and
# the dashboard's summary. One announcement ("incidents") renders the three.
INCIDENT_EVENTS = ("incidents", "incident-resolve", "incident-summary")


def path_for(endpoint: str, **values) -> str:
    """url_for's path, outside any request: the hub renders panels for everyone, in no request."""
    adapter = current_app.url_map.bind("localhost", script_name=current_app.config["APPLICATION_ROOT"])
    return adapter.build(endpoint, values)


async def render_panels(
    election_id: int, panels: set[str] | None, changed: dict[str, datetime] | None = None
) -> dict[str, str]:
    """{event name: html} for the named panels ("contest-<id>", "turnout", "reporting", "incidents"),
    or all. `changed` holds when each was last announced as changed (what the hub saw): a panel says
    "last change HH:MM:SS" when known, else "no change since" the moment it is rendered."""
    wanted = panels or {"contests", "turnout", "reporting", "incidents"}
    changed = changed or {}
    now = datetime.now(UTC)

    def stamp(*keys: str) -> dict:
        seen = [changed[k] for k in (*keys, ALL) if k in changed]
        return {"changed_at": max(seen) if seen else None, "quiet_since": now}

    templates: list[tuple[str, str, dict]] = []  # (event, template, its context)
    async with reading() as db:
        if "contests" in wanted or any(p.startswith("contest-") for p in wanted):
            tallies = await contest_tallies(db, election_id)
            for tally in tallies:
                event = f"contest-{tally.contest.id}"
                if "contests" in wanted or event in wanted:
                    context = {"tally": tally, **stamp(event, "contests")}
                    templates.append((event, "tally/_contest_panel.html", context))
        if "turnout" in wanted:
            turnout = await election_turnout(db, election_id)
            context = {"turnout": turnout, **stamp("turnout")}
            templates.append(("turnout", "tally/_turnout_panel.html", context))
        if "incidents" in wanted:
            context = {**await incident_panels(db, election_id), **stamp("incidents"), "path_for": path_for}
            templates.append(("incidents", "incidents/_feed.html", context))
            templates.append(("incident-resolve", "incidents/_resolve.html", context))
            templates.append(("incident-summary", "incidents/_summary.html", context))
        if "reporting" in wanted:
            statuses = await precinct_statuses(db, election_id)
            templates.append(("reporting", "tally/_reporting_panel.html", {"statuses": statuses}))

    def render_all() -> dict[str, str]:
        return {event: render_template(name, **context) for event, name, context in templates}

    return await asyncio.to_thread(render_all)
