from flask import Blueprint

from portal.auth.roles import EVERY_ROLE, allow
from portal.dashboard import queries
from portal.db import reading
from portal.incidents.queries import incident_panels
from portal.rendering import render
from portal.returns.queries import precinct_statuses
from portal.tally import queries as tally

bp = Blueprint("dashboard", __name__)


@bp.get("/")
@allow(*EVERY_ROLE)
async def index():
    async with reading() as db:
        elections = await queries.current_elections(db)
        overview = await queries.roll_overview(db)
        live = []  # (election, tallies, turnout, precinct statuses, incidents) of the elections under way
        for election, _ in elections:
            if election.status in ("open", "closed"):
                live.append(
                    (
                        election,
                        await tally.contest_tallies(db, election.id),
                        await tally.election_turnout(db, election.id),
                        await precinct_statuses(db, election.id),
                        await incident_panels(db, election.id),
                    )
                )
    return render("dashboard/index.html", elections=elections, overview=overview, live=live)
