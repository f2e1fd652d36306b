"""Staff accounts (admins only)."""

from __future__ import annotations

from tests.conftest import HX


def test_admin_creates_an_account_that_can_sign_in(app, client_as):
    admin = client_as("admin")
    response = admin.post(
        "/users/new",
        data={
            "username": "Jo.Smith",
            "display_name": "Jo Smith",
            "role": "clerk",
            "password": "a long enough password",
            "confirm": "a long enough password",
        },
        headers=HX,
    )
    assert response.status_code == 200 and "closeModal" in response.headers["HX-Trigger"]
    assert "jo.smith" in admin.get("/users").text
    other = app.test_client()
    assert (
        other.post("/login", data={"username": "jo.smith", "password": "a long enough password"}).status_code
        == 302
    )


def test_bad_account_input(client_as, create_user):
    create_user("clerk", username="taken")
    admin = client_as("admin")
    cases = [
        (
            {
                "username": "x",
                "display_name": "X",
                "role": "clerk",
                "password": "p" * 12,
                "confirm": "p" * 12,
            },
            "3 to 40 letters",
        ),
        (
            {
                "username": "taken",
                "display_name": "X",
                "role": "clerk",
                "password": "p" * 12,
                "confirm": "p" * 12,
            },
            "The username taken is taken.",
        ),
        (
            {
                "username": "newbie",
                "display_name": "X",
                "role": "clerk",
                "password": "short",
                "confirm": "short",
            },
            "Use at least 12 characters.",
        ),
        (
            {
                "username": "newbie",
                "display_name": "X",
                "role": "clerk",
                "password": "p" * 12,
                "confirm": "q" * 12,
            },
            "The passwords differ.",
        ),
        (
            {
                "username": "newbie",
                "display_name": "X",
                "role": "root",
                "password": "p" * 12,
                "confirm": "p" * 12,
            },
            "Not a valid choice",
        ),
    ]
    for data, message in cases:
        response = admin.post("/users/new", data=data, headers=HX)
        assert response.status_code == 422, data
        assert message in response.text, message
    assert "newbie" not in admin.get("/users").text


def test_role_change_and_deactivation(client_as, create_user):
    user = create_user("clerk")
    admin = client_as("admin")
    response = admin.post(
        f"/users/{user.id}/edit",
        data={"display_name": "Promoted", "role": "manager", "version": str(user.version)},
        headers=HX,
    )
    assert response.status_code == 200
    html = admin.get("/users").text
    assert "Promoted" in html and "deactivated" in html  # the unchecked box deactivates


def test_last_active_admin_cannot_be_demoted(client_as):
    admin = client_as("admin")
    me = admin.user
    response = admin.post(
        f"/users/{me.id}/edit",
        data={"display_name": me.display_name, "role": "clerk", "active": "y", "version": str(me.version)},
        headers=HX,
    )
    assert response.status_code == 422
    assert "At least one active admin must remain." in response.text


def test_stale_account_edit_is_refused(client_as, create_user):
    user = create_user("clerk")
    first, second = client_as("admin"), client_as("admin")
    data = {"display_name": "One", "role": "clerk", "active": "y", "version": str(user.version)}
    assert first.post(f"/users/{user.id}/edit", data=data, headers=HX).status_code == 200
    response = second.post(f"/users/{user.id}/edit", data={**data, "display_name": "Two"}, headers=HX)
    assert response.status_code == 409 and f"changed by {first.user.display_name} at" in response.text


def test_password_is_never_shown(client_as, create_user):
    user = create_user("clerk")
    html = client_as("admin").get(f"/users/{user.id}/edit").text
    assert "pbkdf2" not in html and 'type="password"' in html
