from __future__ import annotations

from flask import Blueprint, flash, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from portal.auth.current import perform
from portal.auth.roles import EVERY_ROLE, allow
from portal.db import read
from portal.errors import Conflict, StaleEdit
from portal.formatting import number
from portal.forms import VersionedForm, bulk_text, confirm_view, edit_form, form_version, form_view, sent
from portal.inputs import arg_int
from portal.precincts import queries
from portal.precincts.forms import BulkPrecinctsForm, PrecinctForm
from portal.rendering import render, saved

bp = Blueprint("precincts", __name__, url_prefix="/precincts")
EDITORS = ("admin", "manager")
CHANGED = "precinctsChanged"


def _fields(form: PrecinctForm) -> dict[str, str]:
    return {"code": sent(form.code), "name": sent(form.name), "polling_place": form.polling_place.data or ""}


@bp.get("")
@allow(*EVERY_ROLE)
async def index():
    q = request.args.get("q", "").strip()[:100]
    sort = request.args.get("sort", "code")
    if sort.removeprefix("-") not in queries.SORTS:
        sort = "code"
    page = arg_int(request.args, "page", 1, maximum=1_000_000)
    result = await read(queries.search_precincts, q=q, sort=sort, page=page)
    return render("precincts/precincts.html", "precincts/_list.html", result=result, q=q, sort=sort)


@bp.route("/new", methods=["GET", "POST"])
@allow(*EDITORS)
async def create():
    form = PrecinctForm()

    async def save():
        precinct = await perform(queries.create_precinct, data=_fields(form))
        flash(f"Precinct {precinct.code} created.", "success")
        return saved(url_for(".index"), changed_event=CHANGED)

    return await form_view(form, save, "precincts/_form.html", title="New precinct")


@bp.route("/<int:precinct_id>/edit", methods=["GET", "POST"])
@allow(*EDITORS)
async def update(precinct_id: int):
    precinct = await read(queries.get_precinct, precinct_id)
    form = edit_form(PrecinctForm, precinct)

    async def save():
        precinct = await perform(
            queries.update_precinct,
            precinct_id=precinct_id,
            seen_version=form_version(form),
            data=_fields(form),
        )
        flash(f"Precinct {precinct.code} saved.", "success")
        return saved(url_for(".index"), changed_event=CHANGED)

    return await form_view(
        form,
        save,
        "precincts/_form.html",
        stale_fields=queries.AUDITED,
        title=f"Edit precinct {precinct.code}",
    )


@bp.route("/<int:precinct_id>/delete", methods=["GET", "POST"])
@allow(*EDITORS)
async def delete(precinct_id: int):
    precinct = await read(queries.get_precinct, precinct_id)
    form = VersionedForm(version=precinct.version)

    async def remove():
        await perform(queries.delete_precinct, precinct_id=precinct_id, seen_version=form_version(form))
        flash(f"Precinct {precinct.code} deleted.", "success")
        return saved(url_for(".index"), changed_event=CHANGED)

    return await confirm_view(
        form,
        remove,
        refusals=(queries.PrecinctInUse, StaleEdit),  # (a stale delete is refused, not repeated)
        noun="precinct",
        name=f"{precinct.code} ({precinct.name})",
        cancel_url=url_for(".index"),
        title=f"Delete precinct {precinct.code}?",
    )


BULK_UPLOAD_LIMIT = 1 << 20  # 1 MB: thousands of precincts


@bp.route("/import", methods=["GET", "POST"])
@allow(*EDITORS)
async def bulk() -> BaseResponse:
    """Many precincts at once, pasted or from a CSV file: all of them, or none with every bad line
    named (a county's 400 precincts need not be typed one by one)."""
    form = BulkPrecinctsForm()
    line_errors: list[str] = []  # filled by save(), shown with the form

    async def save():
        text = bulk_text(form, BULK_UPLOAD_LIMIT)
        try:
            added, refused = await perform(queries.bulk_add_precincts, text=text)
        except Conflict as conflict:  # one of the codes was added meanwhile: nothing was added
            refused = [str(conflict)]
        line_errors.extend(refused)
        if not refused:
            flash(f"{number(added)} precincts added.", "success")
            return saved(url_for(".index"), changed_event=CHANGED)

    return await form_view(
        form, save, "precincts/_bulk_form.html", line_errors=line_errors, title="Import precincts"
    )
