from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    request,
    stream_with_context,
    url_for,
)

from portal import aio
from portal.audit.queries import record_event
from portal.auth.current import current_actor, perform
from portal.auth.roles import allow
from portal.csvfiles import csv_chunks
from portal.db import read, reading, transaction
from portal.errors import StaleEdit
from portal.forms import VersionedForm, edit_form, form_version, form_view, sent, stale_conflict
from portal.parties.queries import party_choices
from portal.rendering import go_to, render, render_form
from portal.voters import queries
from portal.voters.forms import VoterForm
from portal.voters.search import SORT_LABELS, VoterQuery, search_voters

bp = Blueprint("voters", __name__, url_prefix="/voters")
# The roll holds dates of birth and addresses: staff who work with it, not observers.
READERS = ("admin", "manager", "clerk")
EXPORT_CHUNK = 5000


async def _parties():
    async with reading() as db:
        return await party_choices(db)


@bp.get("")
@allow(*READERS)
async def index():
    query = VoterQuery.from_args(request.args)
    results = await read(search_voters, query)
    return render(
        "voters/voters.html",
        "voters/_list.html",
        results=results,
        query=query,
        parties=await _parties(),
        sort_labels=SORT_LABELS,
    )


def _fields(form: VoterForm, precinct_id: int) -> dict:
    return {
        "state_voter_id": form.state_voter_id.data,
        "first_name": form.first_name.data,
        "middle_name": form.middle_name.data or "",
        "last_name": form.last_name.data,
        "date_of_birth": form.date_of_birth.data,
        "birth_year": form.born_in(),
        "address": form.address.data,
        "city": form.city.data or "",
        "postal_code": form.postal_code.data or "",
        "precinct_id": precinct_id,
        "party_id": form.party_id.data or None,
        "status": form.status.data,
        "registration_date": form.registration_date.data,
    }


async def _form_choices(form: VoterForm) -> None:
    form.party_id.choices = [(0, "None")] + [(p.id, f"{p.name} ({p.abbreviation})") for p in await _parties()]


async def _duplicates_note(form: VoterForm, except_id: int | None) -> list:
    async with reading() as db:
        return await queries.possible_duplicates(
            db,
            first_name=sent(form.first_name),
            last_name=sent(form.last_name),
            date_of_birth=form.date_of_birth.data,
            birth_year=form.born_in(),
            except_id=except_id,
        )


@bp.route("/new", methods=["GET", "POST"])
@allow(*READERS)
async def create():
    form = VoterForm()
    await _form_choices(form)

    async def save():
        duplicates = await _duplicates_note(form, None)
        async with transaction() as db:
            precinct_id = await queries.precinct_id_for(db, form.precinct_code.data)
            voter = await queries.create_voter(db, actor=current_actor(), data=_fields(form, precinct_id))
        flash(f"{voter.first_name} {voter.last_name} ({voter.state_voter_id}) added to the roll.", "success")
        strong = sum(match.strong for match in duplicates)
        if strong:
            flash(
                f"Possible duplicate: {strong} other voter(s) share this name and date of birth.",
                "warning",
            )
        if len(duplicates) > strong:
            flash(
                f"Weaker match: {len(duplicates) - strong} other voter(s) share this name and birth year "
                "(without a full date to compare).",
                "warning",
            )
        return go_to(url_for(".detail", voter_id=voter.id))

    return await form_view(form, save, "voters/_form.html", title="New voter")


@bp.get("/<bigid:voter_id>")
@allow(*READERS)
async def detail(voter_id: int):
    async with reading() as db:
        detail = await queries.voter_detail(db, voter_id)
        duplicates = await queries.possible_duplicates(
            db,
            first_name=detail.voter.first_name,
            last_name=detail.voter.last_name,
            date_of_birth=detail.voter.date_of_birth,
            birth_year=detail.voter.birth_year,
            except_id=voter_id,
        )
    return render("voters/voter.html", detail=detail, duplicates=duplicates)


@bp.route("/<bigid:voter_id>/edit", methods=["GET", "POST"])
@allow(*READERS)
async def update(voter_id: int):
    detail = await read(queries.voter_detail, voter_id)
    voter = detail.voter
    form = edit_form(VoterForm, voter, precinct_code=detail.precinct.code, party_id=voter.party_id or 0)
    await _form_choices(form)

    async def save():
        async with transaction() as db:
            precinct_id = await queries.precinct_id_for(db, form.precinct_code.data)
            voter = await queries.update_voter(
                db,
                actor=current_actor(),
                voter_id=voter_id,
                seen_version=form_version(form),
                data=_fields(form, precinct_id),
            )
        flash(f"{voter.first_name} {voter.last_name} saved.", "success")
        return go_to(url_for(".detail", voter_id=voter_id))

    return await form_view(
        form,
        save,
        "voters/_form.html",
        stale_fields=("state_voter_id", "first_name", "last_name", "address", "status"),
        voter=voter,
        title=f"Edit {voter.first_name} {voter.last_name}",
    )


@bp.route("/<bigid:voter_id>/remove", methods=["GET", "POST"])
@allow(*READERS)
async def remove(voter_id: int):
    detail = await read(queries.voter_detail, voter_id)
    voter = detail.voter
    if voter.status == "removed":
        abort(409, f"{voter.first_name} {voter.last_name} is already removed from the roll.")
    form = VersionedForm(version=voter.version)
    conflict = None
    if form.validate_on_submit():
        data = {name: getattr(voter, name) for name in queries.AUDITED} | {"status": "removed"}
        try:
            await perform(queries.update_voter, voter_id=voter_id, seen_version=form_version(form), data=data)
        except StaleEdit as stale:
            # (the dialog takes the newest version: confirming again removes the record as it is now)
            conflict = stale_conflict(form, stale, ())
        else:
            flash(
                f"{voter.first_name} {voter.last_name} removed from the roll (the record is kept).", "success"
            )
            return go_to(url_for(".detail", voter_id=voter_id))
    return render_form(
        "voters/_remove_form.html",
        form=form,
        voter=voter,
        conflict=conflict,
        title=f"Remove {voter.first_name} {voter.last_name}?",
        status=409 if conflict else 200,
    )


@bp.get("/export.csv")
@allow("admin", "manager")
async def export():
    """The current search as CSV, streamed in keyset chunks (constant memory), formula-safe."""
    query = VoterQuery.from_args(request.args)

    async def chunk(after):
        async with reading() as db:
            return await queries.export_chunk(db, query, after, EXPORT_CHUNK)

    def batches():
        # A sync generator (Flask cannot stream an async one); each chunk runs on the loop.
        after = None
        while True:
            rows, after = aio.run(chunk(after))
            yield rows
            if after is None:
                return

    async with transaction() as db:
        await record_event(
            db, actor=current_actor(), action="export", entity="voter", entity_id="search", after=query.args()
        )
    return Response(
        stream_with_context(csv_chunks(queries.EXPORT_COLUMNS, batches())),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="voters.csv"'},
    )


# The import's pages are on this blueprint too (imported last: they use `bp`).
from portal.voters import import_routes  # noqa: E402, F401
