from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, current_app, flash, make_response, render_template, request, url_for

from portal.auth.current import current_actor, perform
from portal.auth.roles import allow
from portal.checkin import provisionals, queries
from portal.checkin.forms import CheckInForm, DecideForm, VoidForm
from portal.db import read, reading, transaction
from portal.elections.queries import get_election
from portal.forms import form_view
from portal.inputs import INT4_MAX, arg_int, whole_number
from portal.models import PROVISIONAL_STATUSES
from portal.precincts.queries import get_precinct
from portal.rendering import go_to, htmx_headers, is_htmx, render
from portal.voters.search import VoterQuery, search_voters, voter_row

bp = Blueprint("checkin", __name__, url_prefix="/check-in")
provisionals_bp = Blueprint("provisionals", __name__, url_prefix="/elections/<int:election_id>/provisionals")
DESK = ("admin", "manager", "clerk")
ADJUDICATORS = ("admin", "manager")
RESULTS = 20
CHANGED = "checkInsChanged"


def void_window() -> timedelta:
    return timedelta(minutes=int(current_app.config.get("CHECK_IN_VOID_MINUTES", 15)))


def provisional_reasons() -> list[str]:
    return [str(r) for r in current_app.config.get("PROVISIONAL_REASONS", [])]


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
        results, check_ins, voidable = None, {}, set()
        if election and q:
            results = await search_voters(db, VoterQuery(q=q), limit=RESULTS)
            found = await queries.check_ins_for(db, election.id, [r.voter.id for r in results.rows])
            now = await queries.database_now(db)
            voidable = {
                vid for vid, c in found.items() if queries.may_void(current_actor(), c, now, void_window())
            }
            check_ins = await queries.describe_check_ins(db, found)
    return render(
        "checkin/desk.html",
        "checkin/_results.html",
        elections=elections,
        election=election,
        q=q,
        results=results,
        check_ins=check_ins,
        voidable=voidable,
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
        actor = current_actor()
        check_in = await queries.record_check_in(
            db, actor=actor, election_id=election_id, voter_id=voter_id, method=form.method.data
        )
        # (The precinct is held here: the session keeps only weak references, and the turnout
        # below would read it again.)
        precinct = await get_precinct(db, check_in.precinct_id)
        described = await queries.describe_check_in(db, check_in, precinct=precinct, clerk=actor)
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
        voidable={voter_id},
        turnout=turnout,
        form=form,
        oob_turnout=True,
        q=request.form.get("q", ""),
    )


@bp.route("/<int:election_id>/voters/<bigid:voter_id>/void", methods=["GET", "POST"])
@allow(*DESK)
async def void(election_id: int, voter_id: int):
    """Void a mistaken check-in with a reason: the clerk who made it within the window, a manager
    or an admin any time while the election is open. The voter can then be checked in again."""
    async with reading() as db:
        election, check_in, voter = await queries.live_check_in_of(db, election_id, voter_id)
        described = await queries.describe_check_in(db, check_in)
    form = VoidForm()

    async def save():
        async with transaction() as db:
            check_in = await queries.void_check_in(
                db,
                actor=current_actor(),
                election_id=election_id,
                voter_id=voter_id,
                reason=form.reason.data,
                clerk_window=void_window(),
            )
            turnout = await queries.precinct_turnout(db, election_id, check_in.precinct_id)
        flash(
            f"The check-in of {voter.first_name} {voter.last_name} is voided; they can be checked in again.",
            "success",
        )
        if not is_htmx():
            return go_to(url_for("voters.detail", voter_id=voter_id))
        # Close the modal, refresh the desk's list, and show the precinct's turnout as it now is.
        body = render_template("checkin/_turnout_oob.html", turnout=turnout)
        return htmx_headers(
            make_response(body, 200), trigger={"closeModal": True, CHANGED: True}, reswap="innerHTML"
        )

    return await form_view(
        form,
        save,
        "checkin/_void_form.html",
        election=election,
        voter=voter,
        described=described,
        title="Void this check-in?",
    )


def _filters() -> dict:
    status = request.args.get("status", "pending")
    reason = request.args.get("reason", "")
    return {
        "status": status if status in (*PROVISIONAL_STATUSES, "all") else "pending",
        "precinct": arg_int(request.args, "precinct", maximum=INT4_MAX),
        "reason": reason if reason in provisional_reasons() else "",
    }


async def _provisional_list(db, election_id: int, filters: dict) -> dict:
    election = await get_election(db, election_id)
    rows = await provisionals.list_provisionals(
        db,
        election_id,
        status=filters["status"],
        precinct_id=filters["precinct"],
        reason=filters["reason"] or None,
    )
    return {
        "election": election,
        "rows": rows,
        "precincts": await provisionals.provisional_precincts(db, election_id),
        "pending": await provisionals.pending_provisionals_by_precinct(db, election_id),
        "filters": filters,
        "reasons": provisional_reasons(),
    }


@provisionals_bp.get("")
@allow(*ADJUDICATORS)
async def index(election_id: int):
    context = await read(_provisional_list, election_id, _filters())
    form = DecideForm().offer(context["reasons"])
    return render("checkin/provisionals.html", "checkin/_provisionals.html", form=form, **context)


@provisionals_bp.post("/decide")
@allow(*ADJUDICATORS)
async def decide(election_id: int):
    async with reading() as db:
        await provisionals.adjudicable_election(db, election_id)  # a certified election first says so
    reasons = provisional_reasons()
    form = DecideForm().offer(reasons, prompt=False)
    if not form.validate_on_submit():
        raise provisionals.AdjudicationRefused(
            "Choose to accept or reject, and a reason. Nothing was changed."
        )
    ticked = [whole_number(raw, minimum=1) for raw in request.form.getlist("check_in")]
    ids = [i for i in ticked if i is not None]
    if len(ids) != len(ticked):
        raise provisionals.AdjudicationRefused("The ticked ballots could not be read. Nothing was changed.")
    outcome = await perform(
        provisionals.decide_provisionals,
        election_id=election_id,
        check_in_ids=ids,
        decision=form.decision.data,
        reason=form.reason.data,
        reasons=reasons,
    )
    if not outcome.decided:
        raise provisionals.AdjudicationRefused(
            "Nothing was decided: " + "; ".join(outcome.skipped) + ". Nothing was changed."
        )
    verb = provisionals.DECISIONS[form.decision.data]
    flash(
        f"{outcome.decided} provisional ballot{'s' if outcome.decided != 1 else ''} {verb} "
        f"({form.reason.data}).",
        "success",
    )
    if outcome.skipped:
        flash("Left as they were (decided by someone else first): " + "; ".join(outcome.skipped), "warning")
    filters = {
        "status": request.form.get("status", "pending"),
        "precinct": request.form.get("precinct", ""),
        "reason": request.form.get("reason_filter", ""),
    }
    if not is_htmx():
        chosen: dict[str, Any] = {k: v for k, v in filters.items() if v}  # url_for's **values are Any
        return go_to(url_for(".index", election_id=election_id, **chosen))
    request_filters = {
        "status": filters["status"] if filters["status"] in (*PROVISIONAL_STATUSES, "all") else "pending",
        "precinct": whole_number(filters["precinct"], minimum=1, maximum=INT4_MAX),
        "reason": filters["reason"] if filters["reason"] in reasons else "",
    }
    context = await read(_provisional_list, election_id, request_filters)
    form = DecideForm(formdata=None).offer(reasons)
    return render("checkin/_provisionals.html", "checkin/_provisionals.html", form=form, **context)
