from __future__ import annotations

from collections.abc import Mapping

from flask import Blueprint, abort, flash, request, url_for

from portal.auth.current import current_actor
from portal.auth.roles import EVERY_ROLE, allow
from portal.db import read, reading, transaction
from portal.errors import Conflict, NotFound
from portal.inputs import whole_number
from portal.rendering import go_to, render
from portal.returns import methods, queries, verification
from portal.returns.forms import Check, ReturnsForm, check_figures, parse_figures

bp = Blueprint("returns", __name__, url_prefix="/elections/<int:election_id>/returns")
ENTRY = ("admin", "manager", "clerk")


async def _context(election_id: int, precinct_id: int):
    """The election, the precinct, the contests on its ballot with this method's returns, the
    check-ins whose ballots the method counts, and the methods counted. The method is the
    `method` query parameter (the first counted when absent)."""
    async with reading() as db:
        election = await queries.open_for_returns(db, election_id)
        precinct = await queries.precinct_in_election(db, election_id, precinct_id)
        counted = await methods.counted(db, election_id)  # (read once: checked on every keystroke)
        method = queries.counted_method(election, request.args.get("method"), counted)
        ballots = await queries.precinct_ballot(db, election_id, precinct_id, method)
        check_ins = await queries.check_ins_at(db, election_id, precinct_id, method, counted)
    return election, precinct, ballots, check_ins, counted


def _check_all(ballots, check_ins):
    """Parse and check every contest of the form: (figures by contest id, one Check for all)."""
    overall = Check()
    figures = {}
    for ballot in ballots:
        parsed, check = parse_figures(request.form, ballot)
        if parsed is not None:
            check_figures(parsed, ballot, check_ins, check)
            figures[ballot.contest.id] = parsed
        overall.errors.update(check.errors)
        overall.warnings += check.warnings
    return figures, overall


@bp.get("")
@allow(*EVERY_ROLE)
async def index(election_id: int):
    async with reading() as db:
        election = await queries.open_for_returns(db, election_id)
        statuses = await queries.precinct_statuses(db, election_id)
        counted = await methods.counted(db, election_id)
    return render(
        "returns/precincts.html", election=election, statuses=statuses, counted=counted, labels=methods.LABELS
    )


@bp.route("/<int:precinct_id>", methods=["GET", "POST"])
@allow(*ENTRY)
async def entry(election_id: int, precinct_id: int):
    election, precinct, ballots, check_ins, counted = await _context(election_id, precinct_id)
    method = ballots[0].method if ballots else counted[0]
    form = ReturnsForm()
    check = Check()
    values: Mapping[str, str] = {}  # (what was sent, shown again)
    if request.method == "POST" and form.validate_on_submit():
        figures, check = _check_all(ballots, check_ins)
        if check.ok:
            saved = 0
            async with transaction() as db:
                await queries.open_for_returns(db, election_id)
                for ballot in ballots:
                    stored = await queries.save_return(
                        db,
                        actor=current_actor(),
                        election_id=election_id,
                        precinct_id=precinct_id,
                        ballot=ballot,
                        figures=figures[ballot.contest.id],
                    )
                    saved += stored is not None
            where = f"Precinct {precinct.code}, {methods.label(method)}"
            flash(
                f"{where}: {saved} contest(s) saved for verification."
                if saved
                else f"{where}: nothing changed, nothing saved.",
                "success",
            )
            for warning in check.warnings:  # saved all the same: a count above the check-ins is said
                flash(warning, "warning")
            return go_to(url_for(".entry", election_id=election_id, precinct_id=precinct_id, method=method))
        values = request.form
    return render(
        "returns/entry.html",
        election=election,
        precinct=precinct,
        ballots=ballots,
        check_ins=check_ins,
        method=method,
        counted=counted,
        labels=methods.LABELS,
        form=form,
        check=check,
        values=values,
        status=422 if check.errors else 200,
    )


@bp.post("/<int:precinct_id>/check/<int:contest_id>")
@allow(*ENTRY)
async def check_contest(election_id: int, precinct_id: int, contest_id: int):
    """Checked as you type: the running sum and the rule for one contest (nothing is stored)."""
    _, _, ballots, check_ins, _ = await _context(election_id, precinct_id)
    ballot = next((b for b in ballots if b.contest.id == contest_id), None)
    if ballot is None:
        raise NotFound("contest", "This contest is not on the precinct's ballot.")
    figures, check = parse_figures(request.form, ballot)
    if figures is not None:
        check_figures(figures, ballot, check_ins, check)
    return render("returns/_check.html", ballot=ballot, figures=figures, check=check)


def _revision(ballot) -> int:
    revision = whole_number(request.form.get(f"revision_{ballot.contest.id}"), minimum=1)
    if revision is None:
        abort(400, "The form is missing which revision you checked; reload the page.")
    return revision


def _rekeys(ballot) -> int:
    """How many differing re-keys the form was rendered after (0 when it does not say)."""
    return whole_number(request.form.get(f"rekeys_{ballot.contest.id}"), minimum=0) or 0


@bp.route("/<int:precinct_id>/verify", methods=["GET", "POST"])
@allow(*ENTRY)
async def verify(election_id: int, precinct_id: int):
    """A second person verifies blind: re-keys every figure from the tally sheet without seeing the
    entry (or confirms the figures by sight, until a re-key has differed). A contest that matches is
    verified; one that differs is told which fields, never the entered figures, and asks for those
    again; when they differ twice a manager decides, seeing both entries side by side."""
    election, precinct, ballots, check_ins, counted = await _context(election_id, precinct_id)
    method = ballots[0].method if ballots else counted[0]
    pending = [b for b in ballots if b.latest is not None and b.latest.status == "entered"]
    form = ReturnsForm()
    mode = (
        "confirm"
        if request.values.get("mode") == "confirm" and not any(b.rekeys for b in pending)
        else "rekey"
    )
    check = Check()
    values: Mapping[str, str] = {}  # (what was sent, shown again)
    outcome: dict[str, list[str]] = {}
    if request.method == "POST" and not pending and any(b.latest for b in ballots):
        # Verified by someone else since this form was loaded: say so, and by whom; change nothing.
        who = await read(verification.verifiers, [b.latest.id for b in ballots if b.latest])
        raise verification.AlreadyVerified(
            f"Precinct {precinct.code}: nothing is waiting to be verified; the latest figures were "
            f"already verified by {', '.join(who) or 'someone else'}. Nothing was changed."
        )
    if request.method == "POST" and form.validate_on_submit():
        keyable = [b for b in pending if not b.disputed]
        if request.form.get("mode") == "confirm" and mode != "confirm":
            raise Conflict(
                f"Precinct {precinct.code}: a blind re-key differed from the entry, so the figures are "
                "no longer shown for confirming. Re-key the fields marked. Nothing was changed."
            )
        if not pending:
            raise Conflict(
                f"Precinct {precinct.code}: nothing of {methods.label(method)} has been entered to verify."
            )
        if not keyable:
            raise Conflict(
                f"Precinct {precinct.code}: the re-keys differed twice; a manager decides. Nothing changed."
            )
        figures: dict = {}
        if mode == "rekey":
            for ballot in keyable:
                parsed, found = parse_figures(request.form, ballot, only=ballot.asked)
                if parsed is not None and ballot.asked is None:  # (a partial re-key is only compared)
                    check_figures(parsed, ballot, check_ins, found)
                figures[ballot.contest.id] = parsed
                check.errors.update(found.errors)
                check.warnings += found.warnings
        if check.ok:
            async with transaction() as db:
                await queries.open_for_returns(db, election_id)
                for ballot in keyable:
                    revision = _revision(ballot)
                    fields = (
                        verification.differing(ballot, figures[ballot.contest.id]) if mode == "rekey" else []
                    )
                    title = ballot.contest.office_title
                    if fields:
                        kept = await verification.record_rekey(
                            db,
                            actor=current_actor(),
                            ballot=ballot,
                            revision=revision,
                            figures=figures[ballot.contest.id],
                            fields=fields,
                            rekeys=_rekeys(ballot),
                        )
                        second = kept.attempt >= queries.REKEYS_BEFORE_MANAGER
                        outcome.setdefault("disputed" if second else "differs", []).append(title)
                    else:
                        await verification.verify_return(
                            db,
                            actor=current_actor(),
                            ballot=ballot,
                            revision=revision,
                            rekeys=_rekeys(ballot),
                        )
                        outcome.setdefault("verified", []).append(title)
            if not outcome.keys() - {"verified"}:
                flash(
                    f"Precinct {precinct.code}, {methods.label(method)}: {len(keyable)} contest(s) verified.",
                    "success",
                )
                return go_to(url_for(".index", election_id=election_id))
            # Asked again from the tally sheet: the fields start empty (the earlier keying is not shown).
            election, precinct, ballots, check_ins, counted = await _context(election_id, precinct_id)
            pending = [b for b in ballots if b.latest is not None and b.latest.status == "entered"]
        else:
            values = request.form
    return render(
        "returns/verify.html",
        election=election,
        precinct=precinct,
        pending=pending,
        ballots=ballots,  # (the method tabs show every method's state)
        method=method,
        counted=counted,
        labels=methods.LABELS,
        mode=mode,
        form=form,
        outcome=outcome,
        check=check,
        values=values,
        me=current_actor(),
        status=422 if outcome or check.errors else 200,
    )


@bp.post("/<int:precinct_id>/resolve/<int:contest_id>")
@allow("admin", "manager")
async def resolve(election_id: int, precinct_id: int, contest_id: int):
    """A manager keeps the entry or the re-key of a return whose blind re-keys differed twice."""
    _, precinct, ballots, _, _ = await _context(election_id, precinct_id)
    ballot = next((b for b in ballots if b.contest.id == contest_id), None)
    if ballot is None:
        raise NotFound("contest", "This contest is not on the precinct's ballot.")
    if not ReturnsForm().validate_on_submit():
        abort(400, "The form expired; reload the page and decide again.")
    keep = request.form.get("keep", "")
    async with transaction() as db:
        await queries.open_for_returns(db, election_id)
        await verification.resolve_return(
            db, actor=current_actor(), ballot=ballot, revision=_revision(ballot), keep=keep
        )
    flash(
        f"Precinct {precinct.code}, {ballot.contest.office_title}, {methods.label(ballot.method)}: "
        + (
            "the entry was kept and verified."
            if keep == "entry"
            else "the re-keyed figures were kept and verified."
        ),
        "success",
    )
    return go_to(url_for(".verify", election_id=election_id, precinct_id=precinct_id, method=ballot.method))
