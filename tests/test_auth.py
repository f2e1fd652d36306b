"""Sign-in, throttling, sign-out and sessions."""

from __future__ import annotations

from sqlalchemy import select

from portal.models import User
from tests.conftest import TEST_PASSWORD


def test_login_page_and_successful_sign_in(client, auth, create_user):
    user = create_user("clerk", display_name="Casey Clerk")
    assert client.get("/login").status_code == 200
    response = auth.login(user.username)
    assert response.status_code == 302 and response.location == "/"
    page = client.get("/")
    assert "Casey Clerk" in page.text and "Sign out" in page.text


def test_wrong_password_is_refused_with_a_clear_message(client, auth, create_user):
    user = create_user("clerk")
    response = auth.login(user.username, "wrong password here")
    assert response.status_code == 422
    assert "Wrong username or password." in response.text
    assert auth.login("nobody-here").status_code == 422


def test_passwords_are_hashed(create_user, run):
    from portal.db import reading

    user = create_user("clerk")

    async def stored():
        async with reading() as db:
            return await db.scalar(select(User.password_hash).where(User.id == user.id))

    value = run(stored())
    assert TEST_PASSWORD not in value and value.startswith("pbkdf2:")


def test_account_locks_after_five_failures_with_growing_delay(app_factory, create_user):
    app = app_factory()
    user = create_user("clerk")
    # Each attempt from a different address, so only the per-account rule applies.
    for n in range(5):
        client = app.test_client()
        response = client.post(
            "/login",
            data={"username": user.username, "password": "nope nope nope"},
            environ_base={"REMOTE_ADDR": f"10.0.0.{n + 1}"},
        )
        assert response.status_code == 422
    client = app.test_client()
    response = client.post(
        "/login",
        data={"username": user.username, "password": TEST_PASSWORD},
        environ_base={"REMOTE_ADDR": "10.0.0.99"},
    )
    assert response.status_code == 429
    assert "Too many failed sign-ins. Try again in 15 seconds." in response.text


def test_address_locks_after_five_failures(client, auth, create_user):
    users = [create_user("clerk") for _ in range(5)]
    for user in users:  # five different accounts, one address
        assert auth.login(user.username, "bad password!").status_code == 422
    other = create_user("clerk")
    response = auth.login(other.username)
    assert response.status_code == 429
    assert "Try again in" in response.text


def test_lock_grows_and_is_capped():
    from portal.auth.queries import ThrottlePolicy

    policy = ThrottlePolicy(5, 15, 900)
    assert policy.lock_for(4) is None
    assert [policy.lock_for(n).total_seconds() for n in (5, 6, 7)] == [15, 30, 60]
    assert policy.lock_for(40).total_seconds() == 900


def test_success_resets_the_counters(client, auth, create_user, run):
    from portal.db import reading

    user = create_user("clerk")
    for _ in range(3):
        auth.login(user.username, "bad password!")
    assert auth.login(user.username).status_code == 302

    async def failures():
        async with reading() as db:
            return await db.scalar(select(User.failed_logins).where(User.id == user.id))

    assert run(failures()) == 0


def test_deactivated_account_cannot_sign_in(client, auth, create_user, db_call):
    from portal.users.queries import update_user

    admin = create_user("admin")
    user = create_user("clerk")
    db_call(
        update_user,
        actor=admin,
        user_id=user.id,
        seen_version=user.version,
        display_name="x",
        role="clerk",
        active=False,
        new_password=None,
    )
    response = auth.login(user.username)
    assert response.status_code == 422 and "deactivated" in response.text


def test_deactivation_ends_existing_sessions(client_as, create_user, db_call):
    from portal.users.queries import update_user

    admin = create_user("admin")
    clerk = client_as("clerk")
    assert clerk.get("/").status_code == 200
    db_call(
        update_user,
        actor=admin,
        user_id=clerk.user.id,
        seen_version=clerk.user.version,
        display_name="x",
        role="clerk",
        active=False,
        new_password=None,
    )
    assert clerk.get("/").status_code == 302


def test_password_change_ends_other_sessions(client_as, create_user, db_call):
    from portal.users.queries import update_user

    admin = create_user("admin")
    clerk = client_as("clerk")
    db_call(
        update_user,
        actor=admin,
        user_id=clerk.user.id,
        seen_version=clerk.user.version,
        display_name=clerk.user.display_name,
        role="clerk",
        active=True,
        new_password="a brand new password",
    )
    assert clerk.get("/").status_code == 302


def test_logout_is_post_only(client_as):
    client = client_as("observer")
    assert client.get("/logout").status_code == 405
    response = client.post("/logout")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_next_never_leaves_the_portal(client, auth, create_user):
    user = create_user("clerk")
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        response = client.post(
            "/login", data={"username": user.username, "password": TEST_PASSWORD, "next": target}
        )
        assert response.location == "/", target
        client.post("/logout")
    response = client.post(
        "/login", data={"username": user.username, "password": TEST_PASSWORD, "next": "/precincts?q=1"}
    )
    assert response.location == "/precincts?q=1"


def test_anonymous_htmx_request_is_sent_to_sign_in(client):
    response = client.get(
        "/precincts", headers={"HX-Request": "true", "HX-Current-URL": "http://x/precincts"}
    )
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login?next=/precincts")


def test_session_cookie_is_secure_by_default(app_factory, create_user):
    app = app_factory(SESSION_COOKIE_SECURE=True)
    user = create_user("clerk")
    response = app.test_client().post("/login", data={"username": user.username, "password": TEST_PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_sign_ins_and_failures_are_audited(client, auth, create_user, run):
    from portal.audit.queries import search_events
    from portal.db import reading

    user = create_user("clerk")
    auth.login(user.username, "bad password!")
    auth.login(user.username)
    auth.logout()

    async def actions():
        async with reading() as db:
            return [e.action for e in await search_events(db, user=user.username)]

    assert run(actions()) == ["logout", "login", "login_failed"]
