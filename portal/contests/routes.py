"""Contests and candidates, edited in modals on the election page (and as pages without JS).
Every URL carries the election id, so every write goes through the election's lock."""

from __future__ import annotations

from flask import Blueprint, flash, request, url_for

from portal.auth.current import perform
from portal.auth.roles import allow
from portal.contests import queries
from portal.contests.forms import BulkCandidatesForm, CandidateForm, ContestForm, MoveForm
from portal.db import read, reading
from portal.elections.forms import ConfirmForm
from portal.elections.queries import election_for_write, participating_precinct_ids
from portal.forms import bulk_text, confirm_view, edit_form, form_version, form_view, sent
from portal.parties.queries import party_choices
from portal.precincts.queries import list_precinct_choices
from portal.rendering import saved

bp = Blueprint("contests", __name__, url_prefix="/elections/<int:election_id>")
EDITORS = ("admin", "manager")
CHANGED = "electionChanged"
BULK_UPLOAD_LIMIT = 256 * 1024


def _back(election_id: int, anchor: str = "") -> str:
    return url_for("elections.detail", election_id=election_id) + (f"#{anchor}" if anchor else "")


async def _contest_form_context(form: ContestForm, election_id: int, *, ballot_change: bool):
    async with reading() as db:
        election = await election_for_write(db, election_id, ballot_change=ballot_change)
        participating = set(await participating_precinct_ids(db, election_id))
        choices = [p for p in await list_precinct_choices(db) if p.id in participating]
    form.precincts.choices = [(p.id, f"{p.code} · {p.name}") for p in choices]
    return election


def _contest_fields(form: ContestForm) -> dict:
    """What the form sets, as create_contest and update_contest take it."""
    return {
        "office_title": form.office_title.data,
        "vote_for": form.vote_for.data,
        "precinct_ids": None if form.all_precincts.data else list(form.precincts.data or []),
    }


@bp.route("/contests/new", methods=["GET", "POST"])
@allow(*EDITORS)
async def create_contest(election_id: int):
    form = ContestForm()
    election = await _contest_form_context(form, election_id, ballot_change=True)

    async def save():
        contest = await perform(
            queries.create_contest,
            election_id=election_id,
            is_measure=form.is_measure.data,
            **_contest_fields(form),
        )
        flash(f"Contest “{contest.office_title}” added.", "success")
        return saved(_back(election_id, f"contest-{contest.id}"), changed_event=CHANGED)

    return await form_view(
        form,
        save,
        "contests/_contest_form.html",
        election=election,
        creating=True,
        title=f"New contest in {election.name}",
    )


@bp.route("/contests/<int:contest_id>/edit", methods=["GET", "POST"])
@allow(*EDITORS)
async def update_contest(election_id: int, contest_id: int):
    async with reading() as db:
        contest = await queries.get_contest(db, election_id, contest_id)
        on_ballot = await queries.contest_precinct_ids(db, contest_id)
    form = edit_form(ContestForm, contest)
    election = await _contest_form_context(form, election_id, ballot_change=False)
    if request.method == "GET":
        form.all_precincts.data = {choice[0] for choice in form.precincts.choices or ()} == set(on_ballot)
        form.precincts.data = on_ballot

    async def save():
        contest = await perform(
            queries.update_contest,
            election_id=election_id,
            contest_id=contest_id,
            seen_version=form_version(form),
            **_contest_fields(form),
        )
        flash(f"Contest “{contest.office_title}” saved.", "success")
        return saved(_back(election_id, f"contest-{contest_id}"), changed_event=CHANGED)

    return await form_view(
        form,
        save,
        "contests/_contest_form.html",
        stale_fields=queries.CONTEST_AUDITED,
        election=election,
        contest=contest,
        creating=False,
        title=f"Edit {contest.office_title}",
    )


@bp.route("/contests/<int:contest_id>/delete", methods=["GET", "POST"])
@allow(*EDITORS)
async def delete_contest(election_id: int, contest_id: int):
    async with reading() as db:
        await election_for_write(db, election_id, ballot_change=True)
        contest = await queries.get_contest(db, election_id, contest_id)

    async def remove():
        await perform(queries.delete_contest, election_id=election_id, contest_id=contest_id)
        flash(f"Contest “{contest.office_title}” deleted.", "success")
        return saved(_back(election_id), changed_event=CHANGED)

    return await confirm_view(
        ConfirmForm(),
        remove,
        cancel_url=_back(election_id),
        noun="contest",
        name=contest.office_title,
        title=f"Delete {contest.office_title}?",
    )


async def _move(change, election_id: int, anchor: str, **item: int):
    """One place up or down the ballot (MoveForm's direction), then back to the election."""
    form = MoveForm()
    if form.validate_on_submit():
        await perform(change, election_id=election_id, direction=sent(form.direction), **item)
    return saved(_back(election_id, anchor), changed_event=CHANGED)


@bp.post("/contests/<int:contest_id>/move")
@allow(*EDITORS)
async def move_contest(election_id: int, contest_id: int):
    return await _move(queries.move_contest, election_id, f"contest-{contest_id}", contest_id=contest_id)


async def _candidate_form_context(form: CandidateForm, election_id: int, *, ballot_change: bool):
    async with reading() as db:
        election = await election_for_write(db, election_id, ballot_change=ballot_change)
        parties = await party_choices(db)
    form.party_id.choices = [(0, "No party")] + [(p.id, f"{p.name} ({p.abbreviation})") for p in parties]
    return election


def _candidate_fields(form: CandidateForm) -> queries.CandidateFields:
    """What the form sets, as create_candidate and update_candidate take it."""
    return {
        "code": sent(form.code),
        "ballot_name": sent(form.ballot_name),
        "party_id": form.party_id.data or None,
        "status": form.status.data,
        "write_in": form.write_in.data,
    }


@bp.route("/contests/<int:contest_id>/candidates/new", methods=["GET", "POST"])
@allow(*EDITORS)
async def create_candidate(election_id: int, contest_id: int):
    form = CandidateForm()
    election = await _candidate_form_context(form, election_id, ballot_change=True)
    contest = await read(queries.get_contest, election_id, contest_id)

    async def save():
        candidate = await perform(
            queries.create_candidate,
            election_id=election_id,
            contest_id=contest_id,
            **_candidate_fields(form),
        )
        flash(f"{candidate.ballot_name} added to {contest.office_title}.", "success")
        return saved(_back(election_id, f"contest-{contest_id}"), changed_event=CHANGED)

    return await form_view(
        form,
        save,
        "contests/_candidate_form.html",
        election=election,
        contest=contest,
        title=f"New candidate for {contest.office_title}",
    )


@bp.route("/candidates/<int:candidate_id>/edit", methods=["GET", "POST"])
@allow(*EDITORS)
async def update_candidate(election_id: int, candidate_id: int):
    candidate = await read(queries.get_candidate, election_id, candidate_id)
    form = edit_form(CandidateForm, candidate, party_id=candidate.party_id or 0)
    election = await _candidate_form_context(form, election_id, ballot_change=False)

    async def save():
        candidate = await perform(
            queries.update_candidate,
            election_id=election_id,
            candidate_id=candidate_id,
            seen_version=form_version(form),
            **_candidate_fields(form),
        )
        flash(f"{candidate.ballot_name} saved.", "success")
        return saved(_back(election_id, f"contest-{candidate.contest_id}"), changed_event=CHANGED)

    return await form_view(
        form,
        save,
        "contests/_candidate_form.html",
        stale_fields=("code", "ballot_name", "status", "write_in"),
        election=election,
        candidate=candidate,
        title=f"Edit {candidate.ballot_name}",
    )


@bp.route("/candidates/<int:candidate_id>/delete", methods=["GET", "POST"])
@allow(*EDITORS)
async def delete_candidate(election_id: int, candidate_id: int):
    async with reading() as db:
        await election_for_write(db, election_id, ballot_change=True)
        candidate = await queries.get_candidate(db, election_id, candidate_id)

    async def remove():
        await perform(queries.delete_candidate, election_id=election_id, candidate_id=candidate_id)
        flash(f"{candidate.ballot_name} removed from the ballot.", "success")
        return saved(_back(election_id, f"contest-{candidate.contest_id}"), changed_event=CHANGED)

    return await confirm_view(
        ConfirmForm(),
        remove,
        cancel_url=_back(election_id),
        noun="candidate",
        name=f"{candidate.ballot_name} ({candidate.code})",
        title=f"Delete {candidate.ballot_name}?",
    )


@bp.post("/candidates/<int:candidate_id>/move")
@allow(*EDITORS)
async def move_candidate(election_id: int, candidate_id: int):
    return await _move(queries.move_candidate, election_id, "", candidate_id=candidate_id)


@bp.route("/contests/<int:contest_id>/candidates/bulk", methods=["GET", "POST"])
@allow(*EDITORS)
async def bulk_candidates(election_id: int, contest_id: int):
    async with reading() as db:
        election = await election_for_write(db, election_id, ballot_change=True)
        contest = await queries.get_contest(db, election_id, contest_id)
    form = BulkCandidatesForm()
    line_errors: list[str] = []  # filled by save(), shown with the form

    async def save():
        text = bulk_text(form, BULK_UPLOAD_LIMIT)
        added, refused = await perform(
            queries.bulk_add_candidates, election_id=election_id, contest_id=contest_id, text=text
        )
        line_errors.extend(refused)
        if not refused:
            flash(f"{len(added)} candidates added to {contest.office_title}.", "success")
            return saved(_back(election_id, f"contest-{contest_id}"), changed_event=CHANGED)

    return await form_view(
        form,
        save,
        "contests/_bulk_form.html",
        election=election,
        contest=contest,
        line_errors=line_errors,
        title=f"Add candidates to {contest.office_title}",
    )
