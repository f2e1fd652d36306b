from __future__ import annotations

from flask import Blueprint, flash, request, url_for

from portal.auth.current import perform
from portal.auth.roles import EVERY_ROLE, allow
from portal.db import read, reading
from portal.elections import queries
from portal.elections.forms import ConfirmForm, ElectionForm, StatusForm
from portal.elections.lifecycle import next_move
from portal.forms import confirm_view, edit_form, form_version, form_view, sent
from portal.precincts.queries import list_precinct_choices
from portal.rendering import go_to, render, render_form, saved
from portal.returns.methods import counted
from portal.returns.queries import precinct_statuses
from portal.tally import queries as tally

bp = Blueprint("elections", __name__, url_prefix="/elections")
EDITORS = ("admin", "manager")
CHANGED = "electionChanged"


def _detail_url(election_id: int) -> str:
    return url_for(".detail", election_id=election_id)


async def _with_precinct_choices(form: ElectionForm) -> list[int]:
    choices = await read(list_precinct_choices)
    form.precincts.choices = [(p.id, f"{p.code} · {p.name}") for p in choices]
    return [p.id for p in choices]


def _keep_fixed_fields(form: ElectionForm, election, methods: list[str]) -> None:
    """Fields the edit form no longer shows keep their values instead of failing validation
    unseen: the precincts once the election opens, the methods once it closes."""
    if election.status != "draft":
        form.all_precincts.data = True
    if election.status not in ("draft", "open"):
        form.methods.data = methods


def _fields(form: ElectionForm, all_ids: list[int]) -> dict:
    """What the form sets, as create_election and update_election take it."""
    return {
        "name": form.name.data,
        "election_date": form.election_date.data,
        "kind": form.kind.data,
        "precinct_ids": all_ids if form.all_precincts.data else list(form.precincts.data or []),
        "methods": form.methods.data,
    }


@bp.get("")
@allow(*EVERY_ROLE)
async def index():
    elections = await read(queries.list_elections)
    return render("elections/elections.html", "elections/_list.html", elections=elections)


@bp.route("/new", methods=["GET", "POST"])
@allow(*EDITORS)
async def create():
    form = ElectionForm()
    all_ids = await _with_precinct_choices(form)

    async def save():
        election = await perform(queries.create_election, **_fields(form, all_ids))
        flash(f"Election “{election.name}” created as a draft.", "success")
        return go_to(_detail_url(election.id))

    return await form_view(form, save, "elections/_form.html", title="New election")


@bp.get("/<int:election_id>")
@allow(*EVERY_ROLE)
async def detail(election_id: int):
    async with reading() as db:
        detail = await queries.election_detail(db, election_id)
        tallies = turnout = statuses = None
        if detail.election.status != "draft":
            tallies = await tally.contest_tallies(db, election_id)
            turnout = await tally.election_turnout(db, election_id)
            statuses = await precinct_statuses(db, election_id)
    return render(
        "elections/election.html",
        "elections/_detail.html",
        detail=detail,
        move=next_move(detail.election.status),
        tallies=tallies,
        turnout=turnout,
        statuses=statuses,
    )


@bp.route("/<int:election_id>/edit", methods=["GET", "POST"])
@allow(*EDITORS)
async def update(election_id: int):
    async with reading() as db:
        election = await queries.election_for_write(db, election_id)
        participating = await queries.participating_precinct_ids(db, election_id)
        methods = await counted(db, election_id)
    form = edit_form(ElectionForm, election)
    all_ids = await _with_precinct_choices(form)
    if request.method == "GET":
        form.all_precincts.data = set(participating) == set(all_ids)
        form.precincts.data = participating
        form.methods.data = methods
    else:
        _keep_fixed_fields(form, election, methods)

    async def save():
        fields = _fields(form, all_ids)
        if election.status not in ("draft", "open"):
            fields["methods"] = None  # (counted as they are: fixed once the election closes)
        updated = await perform(
            queries.update_election, election_id=election_id, seen_version=form_version(form), **fields
        )
        flash(f"Election “{updated.name}” saved.", "success")
        return saved(_detail_url(election_id), changed_event=CHANGED)

    return await form_view(
        form,
        save,
        "elections/_form.html",
        stale_fields=queries.AUDITED,
        election=election,
        title=f"Edit {election.name}",
    )


@bp.route("/<int:election_id>/delete", methods=["GET", "POST"])
@allow(*EDITORS)
async def delete(election_id: int):
    election = await read(queries.election_for_write, election_id)
    if election.status != "draft":
        raise queries.ElectionLocked(f"{election.name} is {election.status}: only a draft can be deleted.")

    async def remove():
        await perform(queries.delete_election, election_id=election_id)
        flash(f"Election “{election.name}” deleted.", "success")
        return go_to(url_for(".index"))

    return await confirm_view(
        ConfirmForm(),
        remove,
        noun="draft election",
        name=election.name,
        consequence="Its contests and candidates go with it.",
        cancel_url=_detail_url(election_id),
        title=f"Delete {election.name}?",
    )


@bp.route("/<int:election_id>/status", methods=["GET", "POST"])
@allow(*EDITORS)
async def move(election_id: int):
    async with reading() as db:
        detail = await queries.election_detail(db, election_id)
        election = detail.election
        move = next_move(election.status)
        if move is None:
            raise queries.ElectionLocked(f"{election.name} is certified: its lifecycle is complete.")
        missing = pending = []
        if move.to == "certified":
            missing = await queries.missing_verified_returns(db, election_id)
            pending = await queries.pending_provisional_problems(db, election_id)
    form = StatusForm(to=move.to, version=election.version)
    refusal = pending[0] if pending else None
    problems = detail.problems if move.to == "open" else pending[1:] or missing
    problems_title = queries.PENDING_TITLE if pending else ""
    if form.validate_on_submit():
        try:
            election = await perform(
                queries.move_election,
                election_id=election_id,
                to=sent(form.to),
                seen_version=form_version(form),
            )
        except queries.LifecycleRefused as refused:
            refusal, problems = refused.description, refused.problems
            problems_title = refused.problems_title
        else:
            flash(f"{election.name} is now {election.status}.", "success")
            return saved(_detail_url(election_id), changed_event=CHANGED)
    return render_form(
        "elections/_status_form.html",
        form=form,
        election=election,
        move=move,
        problems=problems,
        problems_title=problems_title,
        refusal=refusal,
        title=move.label,
        status=409 if refusal and request.method == "POST" else 200,
    )
