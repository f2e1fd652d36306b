from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, request, session, url_for
from flask_login import current_user, login_user, logout_user

from portal.audit.queries import record_event
from portal.auth import queries
from portal.auth.forms import LoginForm
from portal.auth.roles import EVERY_ROLE, allow, public
from portal.auth.session_user import local_path
from portal.db import transaction
from portal.rendering import render

bp = Blueprint("auth", __name__)


def _policy() -> queries.ThrottlePolicy:
    config = current_app.config
    return queries.ThrottlePolicy(
        config["LOGIN_MAX_FAILURES"], config["LOGIN_LOCK_BASE_SECONDS"], config["LOGIN_LOCK_MAX_SECONDS"]
    )


@bp.route("/login", methods=["GET", "POST"])
@public
async def login():
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    form = LoginForm(next=request.args.get("next", ""))
    if not form.validate_on_submit():
        return render("auth/login.html", form=form, status=422 if form.errors else 200)

    address = request.remote_addr or "unknown"
    username = form.username.data.strip().lower()
    now = queries.utcnow()
    async with transaction() as db:
        user = await queries.get_user_by_username(db, username)
        wait = await queries.seconds_locked(db, user=user, address=address, now=now)
        if wait:
            await record_event(
                db,
                actor=None,
                username=username[:40],
                action="login_refused",
                entity="user",
                entity_id=username[:64],
                after={"address": address, "reason": "throttled"},
            )
            form.form_errors.append(
                f"Too many failed sign-ins. Try again in {wait} second{'s' if wait != 1 else ''}."
            )
            return render("auth/login.html", form=form, status=429)
        ok = await queries.password_matches(user, form.password.data)
        if not ok or not user.active:
            await queries.record_failed_login(db, user=user, address=address, policy=_policy(), now=now)
            reason = "inactive account" if ok else "wrong username or password"
            await record_event(
                db,
                actor=None,
                username=username[:40],
                action="login_failed",
                entity="user",
                entity_id=username[:64],
                after={"address": address, "reason": reason},
            )
            form.form_errors.append("This account is deactivated." if ok else "Wrong username or password.")
            return render("auth/login.html", form=form, status=422)
        await queries.record_successful_login(db, user=user, address=address, now=now)
        await record_event(
            db, actor=user, action="login", entity="user", entity_id=user.id, after={"address": address}
        )
    session.clear()
    login_user(user)
    session.permanent = True
    session["_fingerprint"] = queries.session_fingerprint(user)
    flash(f"Signed in as {user.display_name}.", "success")
    return redirect(local_path(form.next.data) or url_for("dashboard.index"))


@bp.post("/logout")
@allow(*EVERY_ROLE)
async def logout():
    async with transaction() as db:
        await record_event(db, actor=current_user, action="logout", entity="user", entity_id=current_user.id)
    logout_user()
    session.clear()
    flash("Signed out.", "info")
    return redirect(url_for("auth.login"))
