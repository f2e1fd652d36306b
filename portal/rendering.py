"""One URL, two renderings: the full page for a browser, the partial for an htmx request.

Also the htmx response headers (htmx-flask's own `make_response` rejects valid swap values: its
list lacks a comma between "beforebegin" and "afterbegin", and it refuses any swap modifier), and
flashed messages delivered as toasts with htmx responses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, get_flashed_messages, make_response, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from portal import clock
from portal.aio import process_loop
from portal.auth.roles import can

SWAP_STYLES = (
    "innerHTML",
    "outerHTML",
    "textContent",
    "beforebegin",
    "afterbegin",
    "beforeend",
    "afterend",
    "delete",
    "none",
)


def is_htmx() -> bool:
    # A history restore (back button after a cache miss) wants the whole page.
    htmx = getattr(request, "htmx", None)
    if not htmx:
        return False
    return not htmx.boosted and not htmx.history_restore_request


class Later(Response):
    """A response whose body is built after the view's coroutine has returned, in the request's own
    thread (`finish`, called by `Portal.async_to_sync`), not on the process's shared event loop:
    while one request renders a 1 MB canvass, the loop goes on serving every other request's
    queries. Headers and status can be set on it meanwhile, as on any response."""

    def __init__(self, build: Callable[[], str | bytes], status: int = 200, **kwargs: Any) -> None:
        super().__init__(b"", status=status, **kwargs)
        self._build: Callable[[], str | bytes] | None = build

    def finish(self) -> Later:
        if self._build is not None:
            build, self._build = self._build, None
            self.set_data(build())
        return self


def later(build: Callable[[], str | bytes], status: int = 200, **kwargs: Any) -> Response:
    """A response built by `build()` off the event loop: deferred when called on the loop (an async
    view), built at once elsewhere (a sync view, a streamed generator, a CLI)."""
    response = Later(build, status, **kwargs)
    return response if process_loop.owns_current_thread() else response.finish()


def render(page: str, partial: str | None = None, *, status: int = 200, **context: Any) -> Response:
    """Render `partial` for an htmx request (when given), else the full `page`; same data both ways.
    The template is rendered off the event loop (see `Later`)."""
    template = partial if partial and is_htmx() else page
    return later(lambda: render_template(template, **context), status)


def htmx_headers(
    response: Response,
    *,
    trigger: str | dict | None = None,
    retarget: str | None = None,
    reswap: str | None = None,
    push_url: str | None = None,
    redirect: str | None = None,
) -> Response:
    """Set htmx response headers; `reswap` may carry modifiers ("afterbegin scroll:top")."""
    if reswap is not None:
        style = reswap.split()[0] if reswap.split() else ""
        if style not in SWAP_STYLES:
            raise ValueError(f"unknown htmx swap style {style!r}")
        response.headers["HX-Reswap"] = reswap
    if trigger is not None:
        response.headers["HX-Trigger"] = trigger if isinstance(trigger, str) else json.dumps(trigger)
    if retarget is not None:
        response.headers["HX-Retarget"] = retarget
    if push_url is not None:
        response.headers["HX-Push-Url"] = push_url
    if redirect is not None:
        response.headers["HX-Redirect"] = redirect
    return response


# htmx settings (a meta tag in the layout). No eval and no script tags in swapped content, so the
# Content-Security-Policy holds; no page snapshots in localStorage (they would hold voter data);
# 409/422/429 responses carry a form with its errors and are swapped like any page.
HTMX_CONFIG = {
    "includeIndicatorStyles": False,
    "allowEval": False,
    "allowScriptTags": False,
    "selfRequestsOnly": True,
    "historyCacheSize": 0,
    "refreshOnHistoryMiss": True,
    "responseHandling": [
        {"code": "204", "swap": False},
        {"code": "[23]..", "swap": True},
        {"code": "409|422|429", "swap": True, "error": False},
        {"code": "[45]..", "swap": True, "error": True},
        {"code": "...", "swap": False},
    ],
}

# (label, endpoint): each shown to the roles its view allows
NAVIGATION = [
    ("Dashboard", "dashboard.index"),
    ("Elections", "elections.index"),
    ("Voters", "voters.index"),
    ("Check-in", "checkin.desk"),
    ("Precincts", "precincts.index"),
    ("Parties", "parties.index"),
    ("Users", "users.index"),
    ("Audit log", "audit.index"),
]


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    active: bool


def nav_items() -> list[NavItem]:
    blueprint = request.blueprints[0] if request.blueprints else ""
    blueprint = {"contests": "elections"}.get(blueprint, blueprint)
    return [
        NavItem(label, url_for(endpoint), endpoint.split(".")[0] == blueprint)
        for label, endpoint in NAVIGATION
        if can(endpoint)
    ]


def born(voter: Any) -> str:
    """A voter's date of birth, or their birth year where the state's file gives only the year."""
    if voter.date_of_birth:
        return voter.date_of_birth.isoformat()
    return f"{voter.birth_year} (year only)"


def init_app(app: Flask) -> None:
    app.add_template_filter(born)
    # Times on the office's clock with the zone's abbreviation (portal/clock.py)
    app.add_template_filter(clock.clock_time, "time")  # 14:05 EST; |time(seconds=True)
    app.add_template_filter(clock.date_time, "datetime")  # 2026-11-03 14:05 EST
    app.add_template_filter(clock.local_date, "localdate")  # 2026-11-03
    app.add_template_filter(clock.iso, "isotime")  # 2026-11-03T14:05:00-05:00
    # {% if can("precincts.create") %}: a link or button shown by its route's own @allow rule
    app.add_template_global(can)

    @app.context_processor
    def layout_context() -> dict[str, Any]:
        return {
            "htmx_config": HTMX_CONFIG,
            "nav_items": nav_items,
            "now": lambda: datetime.now(UTC),
            "office_time_zone": clock.office_zone().key,
        }

    @app.after_request
    def flashes_as_toasts(response: Response) -> Response:
        # A full page shows flashed messages in its layout; an htmx response carries them as
        # out-of-band toasts, so a message is never lost between fragments.
        if (
            not is_htmx()
            or response.is_streamed
            or response.mimetype != "text/html"
            or response.status_code in (204, 301, 302, 303)
            or "HX-Redirect" in response.headers
        ):
            return response
        messages = get_flashed_messages(with_categories=True)
        if messages:
            toasts = render_template("_toasts_oob.html", messages=messages)
            response.set_data(response.get_data() + toasts.encode())
        return response


def render_form(
    form_template: str, *, page: str = "_form_page.html", status: int = 200, title: str = "", **context: Any
) -> Response:
    """A form three ways: the full `page` without htmx (every form so far stands alone on the
    generic card page), a modal for an htmx GET, and the form alone for an htmx POST (so validation
    errors replace the form in place). Every form posts back to the URL it was shown at (`action`)."""
    action = url_for(request.endpoint or "", **(request.view_args or {}))
    context.update(form_template=form_template, title=title, action=action)
    if not is_htmx():
        template = page
    elif request.method == "GET":
        template = "_modal.html"
    else:
        template = form_template
    return later(lambda: render_template(template, **context), status)


def saved(redirect_to: str, *, changed_event: str) -> BaseResponse:
    """After a successful modal form: htmx closes the modal and refreshes lists; else redirect."""
    if is_htmx():
        return htmx_headers(
            make_response("", 200), trigger={"closeModal": True, changed_event: True}, reswap="innerHTML"
        )
    from flask import redirect

    return redirect(redirect_to, 303)


def go_to(url: str) -> BaseResponse:
    """Send the browser to another page: HX-Redirect for htmx, a 303 redirect otherwise."""
    if is_htmx():
        return htmx_headers(make_response("", 200), redirect=url)
    from flask import redirect

    return redirect(url, 303)
