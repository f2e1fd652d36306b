"""Typed errors, defined once here and mapped once to responses (a page, or an htmx toast).

The data layer raises the domain errors below, never an HTTP exception: a view catches one only to
show it on its form (a FieldError on its field, a StaleEdit beside the newer values); any other goes
through, and `init_app` answers it with its `status` and message, as it answers everything else.

    raise NotFound("election")                      # 404 "No such election."
    raise Conflict(f"{name} is certified: nothing in it can be changed.")   # 409
    raise FieldError("code", f"Code {code} is already used in this election.")   # 422, on the field

Only a lost or refused database connection is "the database is not answering" (503); anything else
unexpected, a full disk included, is an honest 500 and is logged.
"""

from __future__ import annotations

import logging

import asyncpg
from flask import Flask, g, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, InternalServerError

from portal.db import CommitUncertain, is_connection_failure
from portal.extensions import login_manager
from portal.rendering import htmx_headers, is_htmx

log = logging.getLogger(__name__)

TITLES = {
    400: "Bad request",
    401: "Sign-in required",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    422: "Invalid input",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Service unavailable",
}


class DomainError(Exception):
    """A request the rules refuse, with a message for the person who made it; answered with
    `status` wherever no view shows it itself."""

    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    @property
    def description(self) -> str:
        """The message (under the name werkzeug's exceptions gave it; views read either)."""
        return self.message


class NotFound(DomainError):
    """`what` does not exist, or not where it was looked for. The message says so: "No such
    election." unless the case needs its own words ("This precinct was already deleted.")."""

    status = 404

    def __init__(self, what: str, message: str | None = None):
        super().__init__(message or f"No such {what}.")
        self.what = what


class NotAllowed(DomainError):
    """This user may not do this to this record (their role may, in general)."""

    status = 403


class Conflict(DomainError):
    """The state of things refuses the request: an election's status, someone else's change first,
    a record still in use."""

    status = 409


class StaleEdit(Conflict):
    """Someone else saved the row after this form was loaded. `current` holds the saved values
    (a plain dict with "version": the ORM row is expired by the rollback that follows)."""

    def __init__(self, description: str, current: dict | None = None):
        super().__init__(description)
        self.current = current


class FieldError(DomainError):
    """A value the rules refuse, a duplicate included; `field` names the form field that shows the
    message."""

    status = 422

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def error_response(code: int, message: str):
    title = TITLES.get(code, "Error")
    if is_htmx():
        body = render_template("errors/_error_toast.html", code=code, title=title, message=message)
        response = htmx_headers(
            Flask.response_class(body, status=code, mimetype="text/html"),
            retarget="#toasts",
            reswap="beforeend",
        )
        return response
    body = render_template("errors/error.html", code=code, title=title, message=message)
    return body, code


def wants_event_stream() -> bool:
    return "text/event-stream" in request.headers.get("Accept", "")


def stale_stream(retry_ms: int = 3000):
    """For a live panel's EventSource when the server cannot serve it: an event the page shows as
    "reconnecting", and a retry delay. (An error status would make the browser give up instead.)"""
    body = f"retry: {retry_ms}\nevent: stale\ndata: The live figures are reconnecting.\n\n"
    return Flask.response_class(body, mimetype="text/event-stream", headers={"Cache-Control": "no-store"})


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return error_response(
            400, f"The form could not be accepted ({error.description}). Reload the page and try again."
        )

    @app.errorhandler(DomainError)
    def refused(error: DomainError):
        return error_response(error.status, error.message)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code and error.code < 400:
            return error
        if error.code == 413:
            limit = request.max_content_length or 0
            return error_response(
                413,
                f"The upload is larger than the limit of {limit / (1 << 20):,.0f} MB. Nothing was stored.",
            )
        return error_response(error.code or 500, error.description or "")

    def database_unavailable(error: Exception):
        if not is_connection_failure(error):
            # A full disk, a refused statement: the database is not to blame. Raised on, the 500
            # handler logs it and answers "something went wrong" (in tests, the test gets it).
            raise error
        log.error("database unavailable for %s %s: %r", request.method, request.path, error)
        if not hasattr(g, "_login_user"):  # the user could not be loaded: show the page anonymously
            login_manager._update_request_context_with_user(None)
        if wants_event_stream():
            return stale_stream()
        if isinstance(error, CommitUncertain):
            message = (
                "The database stopped answering while this change was being saved. It may or may not "
                "have been stored: look before entering it again."
            )
        elif g.get("committed"):
            message = (
                "Your change was saved. The database stopped answering before this page could show it: "
                "reload in a moment."
            )
        else:
            message = "The database is not answering. Nothing was saved; try again in a moment."
        response = error_response(503, message)
        return response

    # Every way a lost or refused connection surfaces (asyncpg directly, wrapped by SQLAlchemy, the
    # socket below, the pool's timeout) is answered 503; is_connection_failure() decides which of
    # these errors is one (an OSError only when the socket says the server cannot be reached).
    for exc_type in (
        OSError,
        sa_exc.DBAPIError,
        sa_exc.TimeoutError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.exceptions.InternalClientError,
        CommitUncertain,
    ):
        app.register_error_handler(exc_type, database_unavailable)

    @app.errorhandler(InternalServerError)
    def internal_error(error: InternalServerError):
        original = getattr(error, "original_exception", None)
        if original is not None:
            log.exception("unhandled error on %s %s", request.method, request.path, exc_info=original)
        if g.get("committed"):
            message = "Your change was saved, but this page failed to show it. The error was logged."
            return error_response(500, message)
        return error_response(500, "The error was logged. Nothing on this page was saved.")
