from __future__ import annotations

from flask import Blueprint, flash, url_for

from portal.auth.current import perform
from portal.auth.roles import EVERY_ROLE, allow
from portal.db import read
from portal.elections.forms import ConfirmForm
from portal.forms import confirm_view, edit_form, form_version, form_view
from portal.parties import queries
from portal.parties.forms import PartyForm
from portal.rendering import render, saved

bp = Blueprint("parties", __name__, url_prefix="/parties")
EDITORS = ("admin", "manager")
CHANGED = "partiesChanged"


def _fields(form: PartyForm) -> dict:
    return {"name": form.name.data, "abbreviation": form.abbreviation.data, "colour": form.colour.data}


@bp.get("")
@allow(*EVERY_ROLE)
async def index():
    parties = await read(queries.list_parties)
    return render("parties/parties.html", "parties/_list.html", parties=parties)


@bp.route("/new", methods=["GET", "POST"])
@allow(*EDITORS)
async def create():
    form = PartyForm()

    async def save():
        party = await perform(queries.create_party, data=_fields(form))
        flash(f"Party {party.name} created.", "success")
        return saved(url_for(".index"), changed_event=CHANGED)

    return await form_view(form, save, "parties/_form.html", title="New party")


@bp.route("/<int:party_id>/edit", methods=["GET", "POST"])
@allow(*EDITORS)
async def update(party_id: int):
    party = await read(queries.get_party, party_id)
    form = edit_form(PartyForm, party)

    async def save():
        party = await perform(
            queries.update_party, party_id=party_id, seen_version=form_version(form), data=_fields(form)
        )
        flash(f"Party {party.name} saved.", "success")
        return saved(url_for(".index"), changed_event=CHANGED)

    return await form_view(
        form, save, "parties/_form.html", stale_fields=queries.AUDITED, title=f"Edit {party.name}"
    )


@bp.route("/<int:party_id>/delete", methods=["GET", "POST"])
@allow(*EDITORS)
async def delete(party_id: int):
    party = await read(queries.get_party, party_id)

    async def remove():
        await perform(queries.delete_party, party_id=party_id)
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
    )
