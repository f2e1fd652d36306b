"""Access rules on every route, CSRF on every state change, headers and the CSP. Routes are found by
walking app.url_map, so a new route is covered without touching this file."""

from __future__ import annotations

import re

import pytest

from portal.auth.roles import access_rule
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
