from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, request, session, url_for
from flask_login import current_user, login_user, logout_user

from portal.audit.queries import record_event
from portal.auth import queries
from portal.auth.forms import CodeForm, LoginForm
from portal.auth.roles import EVERY_ROLE, allow, public
from portal.auth.session_user import local_path
from portal.db import transaction
from portal.models import User
from portal.rendering import render

bp = Blueprint("auth", __name__)


def _policy() -> queries.ThrottlePolicy:
    config = current_app.config
    return queries.ThrottlePolicy(
        config["LOGIN_MAX_FAILURES"], config["LOGIN_LOCK_BASE_SECONDS"], config["LOGIN_LOCK_MAX_SECONDS"]
    )


PENDING_KEY = "_pending_sign_in"  # password accepted, second factor awaited
PENDING_SECONDS = 300


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
        wait = await _refused_for(db, user, username, address, now)
        if wait:
            form.form_errors.append(_too_many(wait))
            return render("auth/login.html", form=form, status=429)
        ok = await queries.password_matches(user, form.password.data)
        if not ok or not user.active:
            reason = "inactive account" if ok else "wrong username or password"
            await _failed(db, user, username, address, now, reason)
            form.form_errors.append("This account is deactivated." if ok else "Wrong username or password.")
            return render("auth/login.html", form=form, status=422)
        if user.totp_enabled_at:
            await record_event(
                db, actor=user, action="login_password_ok", entity="user", entity_id=user.id,
                after={"address": address, "second_factor": "awaited"},
            )  # fmt: skip
        else:
            token = await _start(db, user, address, now, second_factor=None)
    if user.totp_enabled_at:
        session.clear()
        session[PENDING_KEY] = {"user": user.id, "at": now.timestamp(), "next": form.next.data or ""}
        return redirect(url_for("auth.code"))
    return _signed_in(user, token, form.next.data)


@bp.route("/login/code", methods=["GET", "POST"])
@public
async def code():
    """The second step of a sign-in with two-factor: a code from the authenticator app, or a
    one-time recovery code. Throttled like passwords; a code is accepted once."""
    pending = session.get(PENDING_KEY)
    now = queries.utcnow()
    if not pending or now.timestamp() - pending.get("at", 0) > PENDING_SECONDS:
        session.pop(PENDING_KEY, None)
        flash("Sign in again: the code was not entered within 5 minutes.", "warning")
        return redirect(url_for("auth.login"))
    form = CodeForm()
    if not form.validate_on_submit():
        return render("auth/code.html", form=form, status=422 if form.errors else 200)
    address = request.remote_addr or "unknown"
    async with transaction() as db:
        user = await queries.get_user(db, pending["user"])
        if user is None or not user.active or not user.totp_enabled_at:
            session.pop(PENDING_KEY, None)
            return redirect(url_for("auth.login"))
        wait = await _refused_for(db, user, user.username, address, now)
        if wait:
            form.form_errors.append(_too_many(wait))
            return render("auth/code.html", form=form, status=429)
        entered = form.code.data
        if await queries.accept_totp(db, user, entered, now):
            second_factor = "authenticator"
        else:
            left = await queries.use_recovery_code(db, user, entered)
            if left is None:
                await _failed(db, user, user.username, address, now, "wrong or reused code")
                form.code.errors.append("That code is wrong, or was already used. Enter the current one.")
                return render("auth/code.html", form=form, status=422)
            second_factor = "recovery code"
            await record_event(
                db, actor=user, action="recovery_code_used", entity="user", entity_id=user.id,
                after={"address": address, "left": left},
            )  # fmt: skip
            if left <= 3:
                flash(f"{left} recovery code(s) left: make new ones on your account page.", "warning")
        token = await _start(db, user, address, now, second_factor=second_factor)
    return _signed_in(user, token, pending.get("next"))


async def _refused_for(db, user, username: str, address: str, now) -> int:
    """Seconds sign-in stays refused (audited when it is); 0 when it may go on. The account's row
    is locked first, so parallel guesses at one account are judged one at a time, each seeing the
    failures counted before it. FOR NO KEY UPDATE: a write by the same user appending its audit
    event (whose foreign key to the user takes a KEY SHARE lock) is not held up by a sign-in."""
    if user is not None:
        await db.get(User, user.id, with_for_update={"key_share": True}, populate_existing=True)
    wait = await queries.seconds_locked(db, user=user, address=address, now=now)
    if wait:
        await record_event(
            db, actor=None, username=username[:40], action="login_refused", entity="user",
            entity_id=username[:64], after={"address": address, "reason": "throttled"},
        )  # fmt: skip
    return wait


def _too_many(wait: int) -> str:
    return f"Too many failed sign-ins. Try again in {wait} second{'s' if wait != 1 else ''}."


async def _failed(db, user, username: str, address: str, now, reason: str) -> None:
    await queries.record_failed_login(db, user=user, address=address, policy=_policy(), now=now)
    await record_event(
        db, actor=None, username=username[:40], action="login_failed", entity="user",
        entity_id=username[:64], after={"address": address, "reason": reason},
    )  # fmt: skip


async def _start(db, user, address: str, now, *, second_factor: str | None) -> str:
    await queries.record_successful_login(db, user=user, address=address, now=now)
    token = await queries.start_session(
        db, user=user, address=address, user_agent=request.user_agent.string or ""
    )
    after = {"address": address} | ({"second_factor": second_factor} if second_factor else {})
    await record_event(db, actor=user, action="login", entity="user", entity_id=user.id, after=after)
    return token


def _signed_in(user, token: str, next_url: str | None):
    session.clear()
    login_user(user)
    session.permanent = True
    session[queries.SESSION_KEY] = token
    flash(f"Signed in as {user.display_name}.", "success")
    return redirect(local_path(next_url) or url_for("dashboard.index"))


@bp.post("/logout")
@allow(*EVERY_ROLE)
async def logout():
    """Ends this session on the server: a copy of the cookie is worth nothing afterwards."""
    token = session.get(queries.SESSION_KEY)
    async with transaction() as db:
        if token:
            await queries.end_session(db, token)
        await record_event(db, actor=current_user, action="logout", entity="user", entity_id=current_user.id)
    logout_user()
    session.clear()
    flash("Signed out.", "info")
    return redirect(url_for("auth.login"))
