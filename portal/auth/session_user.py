"""Loading the signed-in user once per request, asynchronously.

Flask-Login's user loader is synchronous; called from inside an async view it would have to wait on
the very event loop that runs the view, and deadlock. So the user is loaded here, in an async
before_request hook, and handed to Flask-Login; the registered user loader only raises.
"""

from __future__ import annotations

import logging

from flask import Flask, abort, current_app, request, session
from flask_login import AnonymousUserMixin

from portal.auth import queries
from portal.auth.roles import access_rule
from portal.db import reading
from portal.extensions import login_manager
from portal.rendering import htmx_headers, is_htmx

log = logging.getLogger(__name__)
NO_USER_ENDPOINTS = {"static", "bootstrap.static", "health.health"}  # never touch the session


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
    async def load_signed_in_user() -> None:
        if request.endpoint in NO_USER_ENDPOINTS:
            login_manager._update_request_context_with_user(None)
            return
        user = None
        user_id = session.get("_user_id")
        if user_id is not None:
            async with reading() as db:
                user = await queries.get_user(db, int(user_id))
            if (
                user is None
                or not user.active
                or session.get("_fingerprint") != queries.session_fingerprint(user)
            ):
                user = None
                session.clear()
        login_manager._update_request_context_with_user(user)
        # Fail closed: a view that declares no access rule is refused to everyone.
        if request.endpoint and access_rule(app.view_functions.get(request.endpoint)) is None:
            abort(403, "This page declares no access rule.")


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
