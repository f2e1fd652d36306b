"""/account: every user's own page. Change the password (the current one is required), see the
sessions signed in and end them all, set up or turn off two-factor sign-in."""

from __future__ import annotations

import pyotp
import segno
from flask import Blueprint, current_app, flash, redirect, session, url_for
from markupsafe import Markup
from sqlalchemy import update

from portal.account.forms import ConfirmForm, EnrolForm, PasswordChangeForm, PasswordConfirmForm
from portal.audit.queries import record_event
from portal.auth import queries
from portal.auth.current import current_actor
from portal.auth.roles import EVERY_ROLE, allow
from portal.db import read, transaction
from portal.errors import NotFound
from portal.models import User
from portal.rendering import render

bp = Blueprint("account", __name__, url_prefix="/account")


async def _me() -> User:
    user = await read(queries.get_user, current_actor().id)
    if user is None:  # deleted since this request signed in
        raise NotFound("account")
    return user


async def _page(status: int = 200, **forms):
    me = await _me()
    sessions = await read(queries.list_sessions, me.id)
    return render(
        "account/index.html",
        me=me,
        sessions=sessions,
        this_session=session.get(queries.SESSION_KEY) and queries.digest(session[queries.SESSION_KEY]),
        password_form=forms.get("password_form") or PasswordChangeForm(),
        disable_form=forms.get("disable_form") or PasswordConfirmForm(),
        end_form=ConfirmForm(),
        required=queries.two_factor_required(me),
        status=status,
    )


@bp.get("")
@allow(*EVERY_ROLE)
async def index():
    return await _page()


@bp.post("/password")
@allow(*EVERY_ROLE)
async def change_password():
    form = PasswordChangeForm()
    if not form.validate_on_submit():
        return await _page(422, password_form=form)
    me = await _me()
    if not await queries.password_matches(me, form.current_password.data):
        form.current_password.errors.append("That is not your current password. Nothing was changed.")
        return await _page(422, password_form=form)
    new_hash = await queries.hash_password(form.new_password.data)
    async with transaction() as db:
        user = await db.get(User, me.id, with_for_update=True)
        user.password_hash = new_hash
        await db.flush()
        ended = await queries.end_sessions(db, me.id, keep_token=session.get(queries.SESSION_KEY))
        await record_event(
            db, actor=user, action="password_change", entity="user", entity_id=user.id,
            after={"password": "changed", "other_sessions_ended": ended},
        )  # fmt: skip
    flash(f"Password changed. {ended} other session(s) signed out.", "success")
    return redirect(url_for(".index"))


@bp.post("/sessions/end")
@allow(*EVERY_ROLE)
async def end_all():
    """Sign out everywhere, this browser included."""
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for(".index"))
    async with transaction() as db:
        ended = await queries.end_sessions(db, current_actor().id)
        await record_event(
            db, actor=current_actor(), action="logout_everywhere", entity="user",
            entity_id=current_actor().id, after={"sessions_ended": ended},
        )  # fmt: skip
    session.clear()
    flash(f"Signed out everywhere ({ended} session(s)).", "info")
    return redirect(url_for("auth.login"))


def _qr_svg(uri: str) -> Markup:
    """The otpauth:// address as a QR code, drawn on the server as inline SVG (no script, no CDN)."""
    svg = segno.make(uri, error="m").svg_inline(scale=5, dark="#000", light="#fff")
    return Markup(svg.replace("<svg ", '<svg role="img" aria-label="QR code for your authenticator app" ', 1))  # noqa: S704 - segno's own markup


@bp.route("/two-factor", methods=["GET", "POST"])
@allow(*EVERY_ROLE)
async def enrol():
    """Set up two-factor sign-in: the secret is made and kept on the server (never in the cookie)
    until a code from it, with the account's password, confirms it."""
    me = await _me()
    if me.totp_enabled_at:
        flash("Two-factor sign-in is already on for this account.", "info")
        return redirect(url_for(".index"))
    secret = me.totp_pending_secret
    if not secret:
        secret = pyotp.random_base32()
        async with transaction() as db:
            await db.execute(
                update(User).where(User.id == me.id).values(totp_pending_secret=secret)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
    form = EnrolForm()
    if form.validate_on_submit():
        now = queries.utcnow()
        step = queries.totp_step_matching(secret, form.code.data, now)
        if not await queries.password_matches(me, form.password.data):
            form.password.errors.append("That is not your password.")
        elif step is None:
            form.code.errors.append(
                "That is not the code the app shows now. Check the phone's clock, then try again."
            )
        if form.errors:
            async with transaction() as db:
                await record_event(
                    db, actor=me, action="two_factor_enrol_failed", entity="user", entity_id=me.id
                )
        else:
            async with transaction() as db:
                user = await db.get(User, me.id, with_for_update=True)
                user.totp_secret, user.totp_enabled_at, user.totp_last_step = secret, now, step
                user.totp_pending_secret = None
                await db.flush()
                codes = await queries.replace_recovery_codes(db, me.id)
                # Sessions signed in with the password alone end; this one goes on.
                ended = await queries.end_sessions(db, me.id, keep_token=session.get(queries.SESSION_KEY))
                await record_event(
                    db, actor=user, action="two_factor_enrol", entity="user", entity_id=user.id,
                    after={"second_factor": "totp", "recovery_codes": len(codes), "sessions_ended": ended},
                )  # fmt: skip
            return render("account/recovery_codes.html", codes=codes, username=me.username)
    issuer = current_app.config.get("REPORT_ISSUER_ABBREVIATION") or "Tally Portal"
    uri = pyotp.TOTP(secret).provisioning_uri(name=me.username, issuer_name=f"Tally Portal {issuer}")
    return render(
        "account/enrol.html",
        form=form,
        qr=_qr_svg(uri),
        secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        required=queries.two_factor_required(me),
        status=422 if form.errors else 200,
    )


@bp.post("/two-factor/off")
@allow(*EVERY_ROLE)
async def disable():
    me = await _me()
    form = PasswordConfirmForm()
    if queries.two_factor_required(me):
        flash(f"Accounts with the role {me.role} must use two-factor sign-in here.", "warning")
        return redirect(url_for(".index"))
    if not form.validate_on_submit():
        return await _page(422, disable_form=form)
    if not await queries.password_matches(me, form.password.data):
        form.password.errors.append("That is not your password. Two-factor sign-in stays on.")
        return await _page(422, disable_form=form)
    async with transaction() as db:
        await queries.clear_two_factor(db, me.id)
        await record_event(db, actor=me, action="two_factor_off", entity="user", entity_id=me.id)
    flash("Two-factor sign-in is off.", "info")
    return redirect(url_for(".index"))


@bp.post("/two-factor/recovery-codes")
@allow(*EVERY_ROLE)
async def new_codes():
    """New recovery codes (the old ones stop working): only with the account's password."""
    me = await _me()
    form = PasswordConfirmForm()
    if not me.totp_enabled_at:
        return redirect(url_for(".index"))
    if not form.validate_on_submit() or not await queries.password_matches(me, form.password.data):
        flash("New recovery codes need your password. Nothing was changed.", "warning")
        return redirect(url_for(".index"))
    async with transaction() as db:
        codes = await queries.replace_recovery_codes(db, me.id)
        await record_event(
            db, actor=me, action="recovery_codes_replaced", entity="user", entity_id=me.id,
            after={"recovery_codes": len(codes)},
        )  # fmt: skip
    return render("account/recovery_codes.html", codes=codes, username=me.username)
