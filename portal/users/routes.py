from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, session, url_for

from portal.account.forms import ConfirmForm
from portal.auth.current import perform
from portal.auth.queries import SESSION_KEY
from portal.auth.roles import allow
from portal.db import read
from portal.forms import edit_form, form_version, form_view
from portal.rendering import render, saved
from portal.users import queries
from portal.users.forms import UserCreateForm, UserEditForm

bp = Blueprint("users", __name__, url_prefix="/users")
CHANGED = "usersChanged"


@bp.get("")
@allow("admin")
async def index():
    users = await read(queries.list_users)
    return render("users/users.html", "users/_list.html", users=users)


@bp.route("/new", methods=["GET", "POST"])
@allow("admin")
async def create():
    form = UserCreateForm()

    async def save():
        user = await perform(
            queries.create_user,
            username=form.username.data,
            display_name=form.display_name.data,
            role=form.role.data,
            password=form.password.data,
        )
        flash(f"Account {user.username} created.", "success")
        return saved(url_for(".index"), changed_event=CHANGED)

    return await form_view(form, save, "users/_form.html", title="New account")


@bp.route("/<int:user_id>/edit", methods=["GET", "POST"])
@allow("admin")
async def update(user_id: int):
    user = await read(queries.get_user, user_id)
    form = edit_form(UserEditForm, user)

    async def save():
        try:
            user = await perform(
                queries.update_user,
                user_id=user_id,
                seen_version=form_version(form),
                display_name=form.display_name.data,
                role=form.role.data,
                active=form.active.data,
                new_password=form.new_password.data or None,
                keep_token=session.get(SESSION_KEY),
            )
        except queries.LastAdmin as refusal:
            form.role.errors.append(str(refusal))
        else:
            flash(f"Account {user.username} saved.", "success")
            return saved(url_for(".index"), changed_event=CHANGED)

    return await form_view(
        form,
        save,
        "users/_form.html",
        stale_fields=("display_name", "role", "active"),
        user=user,
        title=f"Account {user.username}",
    )


@bp.post("/<int:user_id>/two-factor/reset")
@allow("admin")
async def reset_two_factor(user_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400, "The form expired; reload the page.")
    user = await perform(queries.reset_two_factor, user_id=user_id)
    flash(f"Two-factor sign-in of {user.username} was reset; its sessions were signed out.", "success")
    return redirect(url_for(".index"))
