"""Loading the signed-in user once per request, asynchronously.

Flask-Login's user loader is synchronous; called from inside an async view it would have to wait on
the very event loop that runs the view, and deadlock. So the user is loaded here, in an async
before_request hook, and handed to Flask-Login; the registered user loader only raises.
"""

from __future__ import annotations

import logging

from flask import Flask, abort, current_app, g, request, session
from flask_login import AnonymousUserMixin
from werkzeug.wrappers import Response as BaseResponse

from portal.auth import queries
from portal.auth.roles import access_rule
from portal.db import database, is_connection_failure, reading
from portal.extensions import login_manager
from portal.rendering import htmx_headers, is_htmx

log = logging.getLogger(__name__)
NO_USER_ENDPOINTS = {"static", "bootstrap.static", "health.health"}  # never touch the session
# What an account that must enrol in two-factor sign-in may reach before it has.
ENROLMENT_ENDPOINTS = {"account.enrol", "auth.logout", "auth.login", "auth.code", *NO_USER_ENDPOINTS}


class Anonymous(AnonymousUserMixin):
    role = None
    username = "anonymous"

    def has_role(self, *roles: str) -> bool:
        return False


def init_app(app: Flask) -> None:
    login_manager.anonymous_user = Anonymous

    @login_manager.user_loader
    def no_sync_loading(user_id: str):
        # Reached only when the before_request hook did not run (an error before it): the
        # request is treated as anonymous rather than waiting on the event loop.
        log.warning("user %s not loaded before the request; treated as anonymous", user_id)
        return None

    @login_manager.unauthorized_handler
    def unauthorized():
        from flask import redirect, url_for

        target = request.headers.get("HX-Current-URL") if is_htmx() else request.full_path
        login_url = url_for("auth.login", next=local_path(target, strip_host=is_htmx()))
        if is_htmx():
            response = current_app.response_class("", status=401)
            return htmx_headers(response, redirect=login_url)
        return redirect(login_url)

    @app.before_request
    async def load_signed_in_user() -> BaseResponse | None:
        if request.endpoint in NO_USER_ENDPOINTS:
            login_manager._update_request_context_with_user(None)
            return None
        user = None
        token = session.get(queries.SESSION_KEY)
        if token:
            now = queries.utcnow()
            async with reading() as db:
                lifetime = app.permanent_session_lifetime
                found = await queries.session_user(db, token, lifetime=lifetime, now=now)
            if found is None:
                session.clear()  # signed out here or elsewhere, expired, or the account deactivated
            else:
                user, current = found
                g.session_id = current.id
                if now - current.last_seen_at > queries.TOUCH_EVERY:
                    await _touch(current.id, now)
        login_manager._update_request_context_with_user(user)
        # Fail closed: a view that declares no access rule is refused to everyone.
        if request.endpoint and access_rule(app.view_functions.get(request.endpoint)) is None:
            abort(403, "This page declares no access rule.")
        # An account that must use two-factor sign-in and has not set it up may only do that.
        if (
            user is not None
            and not user.totp_enabled_at
            and queries.two_factor_required(user)
            and request.endpoint not in ENROLMENT_ENDPOINTS
        ):
            from flask import redirect, url_for

            if is_htmx():
                response = current_app.response_class("", status=200)
                return htmx_headers(response, redirect=url_for("account.enrol"))
            return redirect(url_for("account.enrol"))
        return None


async def _touch(session_id: int, now) -> None:
    """Note when the session was last used: bookkeeping of its own, so it never counts as the
    request's change ("your change was saved") and its failure never fails the request."""
    try:
        async with database().sessions() as db, db.begin():
            await queries.touch_session(db, session_id, now)
    except Exception as error:
        if not is_connection_failure(error):
            raise
        log.warning("could not note when session %s was last used: %r", session_id, error)


def local_path(target: str | None, *, strip_host: bool = False) -> str | None:
    """The path and query of `target` when it stays in the portal, else None. `strip_host` keeps
    the path of a full URL (htmx's HX-Current-URL); a `next` parameter with a host is refused."""
    if not target:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(target)
    if (parts.scheme or parts.netloc) and not strip_host:
        return None
    path = parts.path or "/"
    if not path.startswith("/") or path.startswith("//"):
        return None
    return path + (f"?{parts.query}" if parts.query else "")
