from __future__ import annotations

from flask import Blueprint, flash, request, url_for

from portal.auth.current import current_actor
from portal.auth.roles import EVERY_ROLE, allow
from portal.db import reading, transaction
from portal.elections.forms import ConfirmForm
from portal.forms import confirm_view, form_version, form_view
from portal.parties import queries
from portal.parties.forms import PartyForm
from portal.rendering import render, saved

bp = Blueprint("parties", __name__, url_prefix="/parties")
EDITORS = ("admin", "manager")
CHANGED = "partiesChanged"


def _data(form: PartyForm) -> dict:
    return {"name": form.name.data, "abbreviation": form.abbreviation.data, "colour": form.colour.data}


@bp.get("")
@allow(*EVERY_ROLE)
async def index():
    async with reading() as db:
        parties = await queries.list_parties(db)
    return render("parties/parties.html", "parties/_list.html", parties=parties)


@bp.route("/new", methods=["GET", "POST"])
@allow(*EDITORS)
async def create():
    form = PartyForm()

    async def save():
        async with transaction() as db:
            party = await queries.create_party(db, actor=current_actor(), data=_data(form))
        flash(f"Party {party.name} created.", "success")
        return saved(url_for(".index"), changed_event=CHANGED)

    return await form_view(form, save, "parties/_form.html", title="New party", action=url_for(".create"))


@bp.route("/<int:party_id>/edit", methods=["GET", "POST"])
@allow(*EDITORS)
async def update(party_id: int):
    async with reading() as db:
        party = await queries.get_party(db, party_id)
    form = PartyForm(obj=party if request.method == "GET" else None)
    if request.method == "GET":
        form.version.data = str(party.version)  # (a hidden field renders str(data))

    async def save():
        async with transaction() as db:
            party = await queries.update_party(
                db,
                actor=current_actor(),
                party_id=party_id,
                seen_version=form_version(form),
                data=_data(form),
            )
        flash(f"Party {party.name} saved.", "success")
        return saved(url_for(".index"), changed_event=CHANGED)

    return await form_view(
        form,
        save,
        "parties/_form.html",
        stale_fields=queries.AUDITED,
        title=f"Edit {party.name}",
        action=url_for(".update", party_id=party_id),
    )


@bp.route("/<int:party_id>/delete", methods=["GET", "POST"])
@allow(*EDITORS)
async def delete(party_id: int):
    async with reading() as db:
        party = await queries.get_party(db, party_id)

    async def remove():
        async with transaction() as db:
            await queries.delete_party(db, actor=current_actor(), party_id=party_id)
        flash(f"Party {party.name} deleted.", "success")
        return saved(url_for(".index"), changed_event=CHANGED)

    return await confirm_view(
        ConfirmForm(),
        remove,
        refusals=(queries.PartyInUse,),
        cancel_url=url_for(".index"),
        noun="party",
        name=party.name,
        title=f"Delete {party.name}?",
        action=url_for(".delete", party_id=party_id),
    )
