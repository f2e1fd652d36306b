from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, session, url_for

from portal.account.forms import ConfirmForm
from portal.auth.current import current_actor
from portal.auth.queries import SESSION_KEY
from portal.auth.roles import allow
from portal.db import reading, transaction
from portal.forms import form_version, form_view
from portal.rendering import render, saved
from portal.users import queries
from portal.users.forms import UserCreateForm, UserEditForm

bp = Blueprint("users", __name__, url_prefix="/users")
CHANGED = "usersChanged"


@bp.get("")
@allow("admin")
async def index():
    async with reading() as db:
        users = await queries.list_users(db)
    return render("users/users.html", "users/_list.html", users=users)


@bp.route("/new", methods=["GET", "POST"])
@allow("admin")
async def create():
    form = UserCreateForm()

    async def save():
        async with transaction() as db:
            user = await queries.create_user(
                db,
                actor=current_actor(),
                username=form.username.data,
                display_name=form.display_name.data,
                role=form.role.data,
                password=form.password.data,
            )
        flash(f"Account {user.username} created.", "success")
        return saved(url_for(".index"), changed_event=CHANGED)

    return await form_view(form, save, "users/_form.html", title="New account", action=url_for(".create"))


@bp.route("/<int:user_id>/edit", methods=["GET", "POST"])
@allow("admin")
async def update(user_id: int):
    async with reading() as db:
        user = await queries.get_user(db, user_id)
    form = UserEditForm(obj=user if request.method == "GET" else None)
    if request.method == "GET":
        form.version.data = str(user.version)  # (a hidden field renders str(data))

    async def save():
        try:
            async with transaction() as db:
                user = await queries.update_user(
                    db,
                    actor=current_actor(),
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
        action=url_for(".update", user_id=user_id),
    )


@bp.post("/<int:user_id>/two-factor/reset")
@allow("admin")
async def reset_two_factor(user_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400, "The form expired; reload the page.")
    async with transaction() as db:
        user = await queries.reset_two_factor(db, actor=current_actor(), user_id=user_id)
    flash(f"Two-factor sign-in of {user.username} was reset; its sessions were signed out.", "success")
    return redirect(url_for(".index"))
