from __future__ import annotations

from flask import Blueprint, flash, url_for

from portal.auth.current import perform
from portal.auth.roles import EVERY_ROLE, allow
from portal.db import read, reading
from portal.elections.queries import get_election, participating_precincts
from portal.forms import sent
from portal.incidents import queries
from portal.incidents.forms import IncidentForm, ResolveForm
from portal.rendering import go_to, render

bp = Blueprint("incidents", __name__, url_prefix="/elections/<int:election_id>/incidents")
REPORTERS = ("admin", "manager", "clerk")
RESOLVERS = ("admin", "manager")


async def _page(election_id: int, form: IncidentForm, status: int = 200):
    async with reading() as db:
        election = await get_election(db, election_id)
        precincts = await participating_precincts(db, election_id)
        panels = await queries.incident_panels(db, election_id)
    form.precinct_id.choices = [(0, "—")] + [(p.id, f"{p.code} · {p.name}") for p in precincts]
    return election, render(
        "incidents/incidents.html",
        election=election,
        form=form,
        resolve_form=ResolveForm(),
        status=status,
        **panels,
    )


@bp.get("")
@allow(*EVERY_ROLE)
async def index(election_id: int):
    _, page = await _page(election_id, IncidentForm())
    return page


@bp.post("")
@allow(*REPORTERS)
async def report(election_id: int):
    form = IncidentForm()
    precincts = await read(participating_precincts, election_id)
    form.precinct_id.choices = [(0, "—")] + [(p.id, p.code) for p in precincts]
    if form.validate_on_submit():
        await perform(
            queries.report_incident,
            election_id=election_id,
            precinct_id=form.precinct_id.data or None,
            state_voter_id=form.state_voter_id.data,
            body=sent(form.body),
        )
        flash("Incident reported.", "success")
        return go_to(url_for(".index", election_id=election_id))
    _, page = await _page(election_id, form, status=422)
    return page


@bp.post("/<int:incident_id>/resolve")
@allow(*RESOLVERS)
async def resolve(election_id: int, incident_id: int):
    if ResolveForm().validate_on_submit():
        await perform(queries.resolve_incident, election_id=election_id, incident_id=incident_id)
        flash("Incident resolved.", "success")
    return go_to(url_for(".index", election_id=election_id))
