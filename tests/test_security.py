"""Access rules on every route, CSRF on every state change, headers and the CSP. Routes are found by
walking app.url_map, so a new route is covered without touching this file."""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest

from portal.auth.roles import access_rule, can
from portal.models import ROLES
from tests.conftest import HX, TEST_PASSWORD, csrf_token_from

STATIC = {"static", "bootstrap.static"}
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


def routes(app):
    """(endpoint, method, url) for every route, with 1 for each URL argument."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint in STATIC:
            continue
        url = rule.build({name: 1 for name in rule.arguments})[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, url


def test_every_route_declares_an_access_rule(app):
    undeclared = [e for e, _, _ in routes(app) if access_rule(app.view_functions[e]) is None]
    assert undeclared == []


def test_anonymous_users_are_refused_everywhere_but_sign_in(app):
    client = app.test_client()
    for endpoint, method, url in routes(app):
        response = client.open(url, method=method)
        if access_rule(app.view_functions[endpoint]) == "public":
            # (the code step of a two-factor sign-in sends a visitor with no password behind it
            # back to the sign-in page)
            assert response.status_code in (200, 422) or response.location.startswith("/login"), endpoint
        else:
            assert response.status_code == 302, (endpoint, method, response.status_code)
            assert response.location.startswith("/login"), (endpoint, method)


@pytest.mark.parametrize("role", ROLES)
def test_roles_not_allowed_get_403(app, client_as, role):
    client = client_as(role)
    checked = 0
    for endpoint, method, url in routes(app):
        rule = access_rule(app.view_functions[endpoint])
        if rule == "public" or role in rule:
            continue
        response = client.open(url, method=method)
        assert response.status_code == 403, (role, endpoint, method, response.status_code)
        checked += 1
    if role != "admin":
        assert checked > 0


# can(): templates show a link or button by its route's own rule ----------------------------------

# Written out here, not read from the routes, so that a changed rule shows up as a failing test.
WHO_MAY = {
    "users.index": {"admin"},
    "precincts.create": {"admin", "manager"},
    "returns.resolve": {"admin", "manager"},
    "voters.export": {"admin", "manager"},
    "returns.entry": {"admin", "manager", "clerk"},
    "incidents.report": {"admin", "manager", "clerk"},
    "elections.index": set(ROLES),
    "auth.login": set(ROLES),  # public
}


@contextmanager
def signed_in(app, user):
    """A request context of `app` signed in as `user` (None: nobody), as the before_request hook
    leaves it."""
    from portal.extensions import login_manager

    with app.test_request_context():
        login_manager._update_request_context_with_user(user)
        yield


@pytest.mark.parametrize("role", ROLES)
def test_can_answers_by_each_routes_rule(app, create_user, role):
    with signed_in(app, create_user(role)):
        for endpoint, roles in WHO_MAY.items():
            assert can(endpoint) is (role in roles), (role, endpoint)
            # The link's URL values may be given, as to url_for; the rule is the view's.
            assert can(endpoint, election_id=1, precinct_id=2) is (role in roles), (role, endpoint)


def test_can_for_nobody_signed_in_is_the_public_pages_only(app):
    with signed_in(app, None):
        assert [e for e in WHO_MAY if can(e)] == ["auth.login"]


def test_can_raises_on_an_unknown_endpoint_when_the_template_renders(app, create_user):
    from flask import render_template_string

    with signed_in(app, create_user("admin")):
        assert render_template_string('{% if can("precincts.create") %}New{% endif %}') == "New"
        with pytest.raises(ValueError, match=r"precincts\.craete"):
            render_template_string('{% if can("precincts.craete") %}New{% endif %}')


def test_can_refuses_a_view_without_access_rule(app_factory, create_user):
    from flask import Blueprint

    app = app_factory()
    bp = Blueprint("forgotten", __name__)
    bp.add_url_rule("/forgotten", "secret", view_func=lambda: "secret")
    app.register_blueprint(bp)
    with signed_in(app, create_user("admin")):
        assert can("forgotten.secret") is False and can("users.index") is True


def test_the_buttons_a_role_sees_follow_the_routes(client_as, create_precinct, create_party):
    create_precinct(code="1-A")
    create_party(abbreviation="FWD")
    for role, sees in [("admin", True), ("manager", True), ("clerk", False), ("observer", False)]:
        client = client_as(role)
        assert ("New precinct" in client.get("/precincts").text) is sees, role
        assert ("/edit" in client.get("/precincts").text) is sees, role
        assert ("New party" in client.get("/parties").text) is sees, role
        assert ("New election" in client.get("/elections").text) is sees, role
        if role != "observer":
            voters = client.get("/voters").text
            assert ("Import CSV" in voters) is sees and ("Export CSV" in voters) is sees, role


def test_the_menu_a_role_sees_follows_the_routes(client_as):
    everyone = ["Dashboard", "Elections", "Precincts", "Parties"]
    staff = ["Dashboard", "Elections", "Voters", "Check-in", "Precincts", "Parties"]
    for role, menu in [
        ("admin", [*staff, "Users", "Audit log"]),
        ("manager", [*staff, "Audit log"]),
        ("clerk", staff),
        ("observer", everyone),
    ]:
        html = client_as(role).get("/").text
        assert (
            re.findall(r'<a class="nav-link[^"]*" href="[^"]*"\s*(?:aria-current="page")?>([^<]+)</a>', html)
            == menu
        )


def test_a_view_without_access_rule_is_refused(app_factory, client_as):
    from flask import Blueprint

    app = app_factory()
    bp = Blueprint("forgotten", __name__)
    bp.add_url_rule("/forgotten", view_func=lambda: "secret")
    app.register_blueprint(bp)
    client = app.test_client()
    user = client_as("admin").user
    client.post("/login", data={"username": user.username, "password": TEST_PASSWORD})
    response = client.get("/forgotten")
    assert response.status_code == 403 and "secret" not in response.text


@pytest.fixture
def csrf_admin(app_factory, create_user):
    app = app_factory(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    user = create_user("admin")
    token = csrf_token_from(client.get("/login").text)
    response = client.post(
        "/login", data={"username": user.username, "password": TEST_PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302
    return app, client


def test_every_state_changing_route_refuses_a_request_without_csrf_token(csrf_admin):
    app, client = csrf_admin
    checked = []
    for endpoint, method, url in routes(app):
        if method not in STATE_CHANGING:
            continue
        for headers in ({}, HX):
            response = client.open(url, method=method, data={"x": "1"}, headers=headers)
            assert response.status_code == 400, (endpoint, method, response.status_code)
            assert "CSRF" in response.text or "form could not be accepted" in response.text
        checked.append(endpoint)
    assert {"auth.logout", "precincts.create", "users.create"} <= set(checked)


def test_htmx_requests_carry_the_token_in_a_header(csrf_admin):
    _, client = csrf_admin
    page = client.get("/precincts").text
    token = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page).group(1)
    response = client.post(
        "/precincts/new", data={"code": "1-A", "name": "One"}, headers={**HX, "X-CSRFToken": token}
    )
    assert response.status_code == 200
    assert "closeModal" in response.headers["HX-Trigger"]


PAGES = ["/login", "/", "/precincts", "/precincts/new", "/users", "/users/new", "/audit", "/no-such-page"]


def test_pages_have_no_inline_script_or_style_and_strict_headers(client_as, create_precinct):
    create_precinct(code="7-A")
    client = client_as("admin")
    for url in PAGES:
        response = client.get(url)
        html = response.text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
        assert not re.search(r"\son[a-z]+\s*=", html), url
        assert not re.search(r"\sstyle\s*=", html), url
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"


def test_assets_are_served_locally(client_as):
    html = client_as("observer").get("/").text
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and not [s for s in sources if s.startswith(("http:", "https:", "//"))]
    for path in [s for s in sources if s.endswith((".js", ".css"))]:
        assert client_as("observer").get(path).status_code == 200, path
