"""Access rules: every view declares who may use it, and a view without a rule is refused.

@bp.get("/precincts")
@allow("admin", "manager", "clerk", "observer")
async def index(): ...

Templates ask the same rule, written once on the route: {% if can("precincts.create") %}.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from flask import abort, current_app
from flask_login import current_user

from portal.extensions import login_manager
from portal.models import ROLES

EVERY_ROLE = ROLES
STAFF_WRITERS = ("admin", "manager", "clerk")


def _check(roles: frozenset[str]) -> None:
    if not current_user.is_authenticated:
        abort(login_manager.unauthorized())
    if current_user.role not in roles:
        abort(403, f"Your role ({current_user.role}) does not allow this.")


def allow(*roles: str) -> Callable:
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    allowed = frozenset(roles)

    def decorate(view: Callable) -> Callable:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def guarded(*args, **kwargs):
                _check(allowed)
                return await view(*args, **kwargs)
        else:

            @functools.wraps(view)
            def guarded(*args, **kwargs):
                _check(allowed)
                return view(*args, **kwargs)

        guarded.allowed_roles = allowed  # type: ignore[attr-defined]  # read by every view's role check
        return guarded

    return decorate


def public(view: Callable) -> Callable:
    """For the few views anyone may reach (the sign-in page)."""
    view.public = True  # type: ignore[attr-defined]  # (a function's attribute, as above)
    return view


def access_rule(view: Callable | None) -> frozenset[str] | str | None:
    """The roles a view allows, "public", or None when it declares nothing (and is refused)."""
    if view is None:
        return None
    if getattr(view, "public", False):
        return "public"
    return getattr(view, "allowed_roles", None)


def can(endpoint: str, **values: Any) -> bool:
    """Whether the signed-in user may use `endpoint`, by the @allow rule on the view it maps to: a
    template guards a link or button with the rule of the route it leads to, not a copy of it.
    `values` are the link's URL values, so a guard reads like its url_for; the rules are per view,
    so they do not change the answer. An unknown endpoint raises (at render time, like url_for),
    rather than hide the button for good."""
    view = current_app.view_functions.get(endpoint)
    if view is None:
        raise ValueError(f"can({endpoint!r}): there is no such endpoint")
    rule = access_rule(view)
    if rule == "public":
        return True
    return rule is not None and current_user.is_authenticated and current_user.role in rule
