from __future__ import annotations

from flask import Blueprint, flash, request, url_for

from portal.auth.current import current_actor
from portal.auth.roles import allow
from portal.checkin import queries
from portal.checkin.forms import CheckInForm
from portal.db import reading, transaction
from portal.inputs import arg_int
from portal.rendering import go_to, is_htmx, render
from portal.voters.search import VoterQuery, search_voters, voter_row

bp = Blueprint("checkin", __name__, url_prefix="/check-in")
DESK = ("admin", "manager", "clerk")
RESULTS = 20


@bp.get("")
@allow(*DESK)
async def desk():
    q = request.args.get("q", "").strip()[:100]
    async with reading() as db:
        elections = await queries.open_elections(db)
        chosen = arg_int(request.args, "election")
        election = next(
            (e for e in elections if e.id == chosen), elections[0] if len(elections) == 1 else None
        )
        results, check_ins = None, {}
        if election and q:
            results = await search_voters(db, VoterQuery(q=q), limit=RESULTS)
            check_ins = await queries.check_ins_for(db, election.id, [r.voter.id for r in results.rows])
            check_ins = {vid: await queries.describe_check_in(db, c) for vid, c in check_ins.items()}
    return render(
        "checkin/desk.html",
        "checkin/_results.html",
        elections=elections,
        election=election,
        q=q,
        results=results,
        check_ins=check_ins,
        form=CheckInForm(),
    )


@bp.post("/<int:election_id>/voters/<bigid:voter_id>")
@allow(*DESK)
async def record(election_id: int, voter_id: int):
    form = CheckInForm()
    if not form.validate_on_submit():
        raise queries.CheckInRefused("Choose how the ballot is issued.")
    # Everything the answer shows is read inside the transaction: once it commits, nothing can
    # fail on the database and make the clerk believe the ballot was not issued.
    async with transaction() as db:
        check_in = await queries.record_check_in(
            db, actor=current_actor(), election_id=election_id, voter_id=voter_id, method=form.method.data
        )
        described = await queries.describe_check_in(db, check_in)
        turnout = await queries.precinct_turnout(db, election_id, check_in.precinct_id)
        row = await voter_row(db, voter_id)
    flash(f"Ballot issued ({queries.METHOD_LABELS[check_in.method]}).", "success")
    if not is_htmx():
        return go_to(url_for(".desk", election=election_id, q=request.form.get("q", "")))
    return render(
        "checkin/_row.html",
        "checkin/_row.html",
        row=row,
        election_id=election_id,
        described=described,
        turnout=turnout,
        form=form,
        oob_turnout=True,
        q=request.form.get("q", ""),
    )
