from __future__ import annotations

from flask import Blueprint, Response, current_app

from portal import __version__
from portal.auth.roles import EVERY_ROLE, allow
from portal.db import reading
from portal.elections.queries import get_election
from portal.reports import exports, nist
from portal.reports.queries import canvass

bp = Blueprint("reports", __name__, url_prefix="/elections/<int:election_id>/reports")


def nist_report(data) -> dict:
    config = current_app.config
    return nist.election_report(
        data,
        issuer=config["REPORT_ISSUER"],
        issuer_abbreviation=config["REPORT_ISSUER_ABBREVIATION"],
        jurisdiction=config["JURISDICTION_NAME"],
        vendor=f"Tally Portal {__version__}",
    )


def _download(body: str, mimetype: str, filename: str) -> Response:
    return Response(
        body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@bp.get("/results.json")
@allow(*EVERY_ROLE)
async def results_json(election_id: int):
    async with reading() as db:
        await get_election(db, election_id)
        data = await canvass(db, election_id)
    return _download(
        nist.dumps(nist_report(data)), "application/json", f"election-{election_id}-results.json"
    )


@bp.get("/canvass.csv")
@allow(*EVERY_ROLE)
async def canvass_csv(election_id: int):
    async with reading() as db:
        await get_election(db, election_id)
        data = await canvass(db, election_id)
    return _download(exports.canvass_csv(data), "text/csv", f"election-{election_id}-canvass.csv")
