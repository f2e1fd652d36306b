"""Sessions that end on the server, the account page, and two-factor sign-in (TOTP), with CSRF on
as a browser sends it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import func, select

from portal.db import reading
from portal.models import AuditEvent, RecoveryCode, User, UserSession
from tests.conftest import TEST_PASSWORD

COOKIE = "tally_session"


class Browser:
    """A test client that sends CSRF tokens the way the pages give them."""

    def __init__(self, app):
        self.client = app.test_client()

    def token(self, path: str = "/login") -> str:
        page = self.client.get(path).get_data(as_text=True)
        found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
            r'"X-CSRFToken": "([^"]+)"', page
        )
        return found.group(1)

    def post(self, path: str, data: dict | None = None, token_from: str | None = None):
        token = self.token(token_from or path)
        return self.client.post(path, data={**(data or {}), "csrf_token": token})

    def get(self, path: str):
        return self.client.get(path)

    def sign_in(self, username: str, password: str = TEST_PASSWORD):
        return self.post("/login", {"username": username, "password": password})


@pytest.fixture
def csrf_app(app_factory):
    return app_factory(WTF_CSRF_ENABLED=True)


def count(run, model, **where):
    async def go():
        async with reading() as db:
            query = select(func.count()).select_from(model)
            for key, value in where.items():
                query = query.where(getattr(model, key) == value)
            return await db.scalar(query)

    return run(go())


def events(run, action):
    return count(run, AuditEvent, action=action)


# Sessions ---------------------------------------------------------------------------------------------


def test_sign_out_ends_the_session_on_the_server(csrf_app, create_user, run):
    user = create_user("clerk")
    browser = Browser(csrf_app)
    assert browser.sign_in(user.username).status_code == 302
    stolen = browser.client.get_cookie(COOKIE).value
    assert browser.get("/").status_code == 200
    assert browser.post("/logout", token_from="/").status_code == 302
    replay = csrf_app.test_client()
    replay.set_cookie(COOKIE, stolen)
    response = replay.get("/")
    assert response.status_code == 302 and response.location.startswith("/login")
    assert count(run, UserSession, user_id=user.id) == 0


def test_the_account_page_lists_sessions_and_signs_out_everywhere(csrf_app, create_user, run):
    user = create_user("observer")
    here, there = Browser(csrf_app), Browser(csrf_app)
    here.sign_in(user.username)
    there.sign_in(user.username)
    page = here.get("/account").get_data(as_text=True)
    assert page.count('<td class="font-monospace small">127.0.0.1</td>') == 2 and "this browser" in page
    assert count(run, UserSession, user_id=user.id) == 2
    response = here.post("/account/sessions/end", token_from="/account")
    assert response.status_code == 302 and response.location.startswith("/login")
    assert there.get("/").status_code == 302 and here.get("/").status_code == 302
    assert events(run, "logout_everywhere") == 1


def test_changing_the_password_needs_the_current_one_and_ends_the_other_sessions(csrf_app, create_user, run):
    user = create_user("clerk")
    here, there = Browser(csrf_app), Browser(csrf_app)
    here.sign_in(user.username)
    there.sign_in(user.username)
    new = "a brand new passphrase"
    wrong = here.post(
        "/account/password",
        {"current_password": "not it at all", "new_password": new, "confirm": new},
        token_from="/account",
    )
    assert wrong.status_code == 422 and "not your current password" in wrong.get_data(as_text=True)
    ok = here.post(
        "/account/password",
        {"current_password": TEST_PASSWORD, "new_password": new, "confirm": new},
        token_from="/account",
    )
    assert ok.status_code == 302
    assert here.get("/").status_code == 200  # this session stays
    assert there.get("/").status_code == 302  # the other one ended
    again = Browser(csrf_app)
    assert again.sign_in(user.username, new).status_code == 302
    assert events(run, "password_change") == 1


def test_deactivation_ends_every_session(csrf_app, create_user, client_as, run):
    user = create_user("clerk")
    browser = Browser(csrf_app)
    browser.sign_in(user.username)
    admin = client_as("admin")
    admin.post(f"/users/{user.id}/edit", data={"display_name": "X", "role": "clerk", "version": "1"})
    assert browser.get("/").status_code == 302
    assert count(run, UserSession, user_id=user.id) == 0


def test_sessions_expire_on_the_server_too(csrf_app, create_user, run):
    from sqlalchemy import update

    from portal.db import transaction

    user = create_user("clerk")
    browser = Browser(csrf_app)
    browser.sign_in(user.username)

    async def age():
        async with transaction() as db:
            await db.execute(update(UserSession).values(created_at=datetime.now(UTC) - timedelta(days=2)))

    run(age())
    assert browser.get("/").status_code == 302


# Two-factor sign-in ---------------------------------------------------------------------------------------


def enrol(browser: Browser, run, user) -> tuple[str, list[str]]:
    page = browser.get("/account/two-factor").get_data(as_text=True)
    assert (
        "<svg" in page
        and 'aria-label="QR code' in page
        and "<script" not in page.split("<svg")[1].split("</svg>")[0]
    )
    secret = re.search(r'user-select-all">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    code = pyotp.TOTP(secret).now()
    response = browser.post(
        "/account/two-factor", {"code": code, "password": TEST_PASSWORD}, token_from="/account/two-factor"
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and "shown only this once" in text
    codes = re.findall(r"<li>([2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4})</li>", text)
    assert len(codes) == 10
    return secret, codes


def last_step_used(run, user_id):
    async def go():
        async with reading() as db:
            return await db.scalar(select(User.totp_last_step).where(User.id == user_id))

    return run(go())


def test_enrol_then_sign_in_with_a_code_that_cannot_be_replayed(csrf_app, create_user, run):
    user = create_user("manager")
    browser = Browser(csrf_app)
    browser.sign_in(user.username)
    secret, _ = enrol(browser, run, user)
    assert events(run, "two_factor_enrol") == 1
    browser.post("/logout", token_from="/")

    fresh = Browser(csrf_app)
    step_one = fresh.sign_in(user.username)
    assert step_one.status_code == 302 and step_one.location.endswith("/login/code")
    assert fresh.get("/").status_code == 302  # not signed in yet
    wrong = fresh.post(
        "/login/code", {"code": "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"}
    )
    assert wrong.status_code == 422 and "wrong, or was already used" in wrong.get_data(as_text=True)
    # The current code: only a step newer than the one used at enrolment is accepted. Wait for it.
    totp = pyotp.TOTP(secret)
    used = last_step_used(run, user.id)
    at = datetime.now(UTC)
    while totp.timecode(at) <= used:
        at += timedelta(seconds=1)
    code = totp.at(at)  # (at most one step ahead: within the drift allowed)
    ok = fresh.post("/login/code", {"code": code})
    assert ok.status_code == 302 and fresh.get("/").status_code == 200
    # The same code again, in another browser: refused.
    thief = Browser(csrf_app)
    thief.sign_in(user.username)
    replay = thief.post("/login/code", {"code": code})
    assert replay.status_code == 422 and thief.get("/").status_code == 302
    assert events(run, "login_failed") >= 2 and events(run, "login_password_ok") == 2


def test_a_recovery_code_signs_in_once(csrf_app, create_user, run):
    user = create_user("clerk")
    browser = Browser(csrf_app)
    browser.sign_in(user.username)
    _, codes = enrol(browser, run, user)
    typed = codes[0].lower().replace("-", " ")  # as a person may type it: any case, any spacing
    for attempt, expected in ((1, 302), (2, 422)):
        other = Browser(csrf_app)
        other.sign_in(user.username)
        response = other.post("/login/code", {"code": typed if attempt == 1 else codes[0]})
        assert response.status_code == expected, attempt
    assert count(run, RecoveryCode, user_id=user.id) == 9
    assert events(run, "recovery_code_used") == 1


def test_codes_are_throttled_like_passwords(csrf_app, create_user, run):
    user = create_user("clerk")
    browser = Browser(csrf_app)
    browser.sign_in(user.username)
    enrol(browser, run, user)
    other = Browser(csrf_app)
    other.sign_in(user.username)
    statuses = [other.post("/login/code", {"code": "12345" + str(n)}).status_code for n in range(7)]
    assert 429 in statuses and statuses[-1] == 429
    assert events(run, "login_refused") >= 1


def test_roles_that_must_use_two_factor_enrol_before_anything_else(app_factory, create_user, run):
    app = app_factory(WTF_CSRF_ENABLED=True, TWO_FACTOR_REQUIRED_ROLES=["admin", "manager"])
    manager, clerk = create_user("manager"), create_user("clerk")
    browser = Browser(app)
    browser.sign_in(manager.username)
    for path in ("/", "/voters", "/elections", "/account"):
        response = browser.get(path)
        assert response.status_code == 302 and response.location.endswith("/account/two-factor"), path
    enrol(browser, run, manager)
    assert browser.get("/elections").status_code == 200
    off = browser.post("/account/two-factor/off", {"password": TEST_PASSWORD}, token_from="/account")
    assert off.status_code == 302 and last_step_used(run, manager.id) is not None  # still on
    other = Browser(app)
    other.sign_in(clerk.username)
    assert other.get("/voters").status_code == 200  # a clerk is not asked


def test_an_admin_resets_a_lost_second_factor(csrf_app, create_user, client_as, run):
    user = create_user("clerk")
    browser = Browser(csrf_app)
    browser.sign_in(user.username)
    enrol(browser, run, user)
    admin = Browser(csrf_app)
    admin_user = create_user("admin")
    admin.sign_in(admin_user.username)
    edit = admin.get(f"/users/{user.id}/edit").get_data(as_text=True)
    assert "Reset two-factor sign-in" in edit
    response = admin.post(f"/users/{user.id}/two-factor/reset", token_from=f"/users/{user.id}/edit")
    assert response.status_code == 302
    assert browser.get("/").status_code == 302  # its sessions ended
    again = Browser(csrf_app)
    assert again.sign_in(user.username).location == "/"  # password only, then
    assert count(run, RecoveryCode, user_id=user.id) == 0
    assert events(run, "two_factor_reset") == 1


def test_turning_two_factor_off_needs_the_password(csrf_app, create_user, run):
    user = create_user("observer")
    browser = Browser(csrf_app)
    browser.sign_in(user.username)
    enrol(browser, run, user)
    wrong = browser.post("/account/two-factor/off", {"password": "nope nope nope"}, token_from="/account")
    assert wrong.status_code == 422
    ok = browser.post("/account/two-factor/off", {"password": TEST_PASSWORD}, token_from="/account")
    assert ok.status_code == 302 and events(run, "two_factor_off") == 1


def test_enrolment_needs_the_password_and_keeps_the_secret_off_the_cookie(csrf_app, create_user, run):
    user = create_user("clerk")
    browser = Browser(csrf_app)
    browser.sign_in(user.username)
    page = browser.get("/account/two-factor").get_data(as_text=True)
    secret = re.search(r'user-select-all">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    cookie = browser.client.get_cookie(COOKIE).value
    import base64
    import zlib

    compressed = cookie.startswith(".")  # itsdangerous: [.]payload.timestamp.signature
    payload = cookie.split(".")[1 if compressed else 0]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    text = (zlib.decompress(raw) if compressed else raw).decode(errors="replace")
    assert "_sid" in text  # (decoded right: the session's own key is there)
    assert secret not in text  # the session cookie is signed, not encrypted: no secret in it
    refused = browser.post(
        "/account/two-factor",
        {"code": pyotp.TOTP(secret).now(), "password": "not the password"},
        token_from="/account/two-factor",
    )
    assert refused.status_code == 422 and last_step_used(run, user.id) is None


def test_parallel_code_guesses_are_counted_one_by_one(app_factory, create_user, run):
    import threading

    from tests.conftest import LiveServer
    from tests.faults import Client

    user = create_user("clerk")
    app = app_factory(WTF_CSRF_ENABLED=True, SESSION_COOKIE_SECURE=False)
    with LiveServer(app) as server:
        owner = Client(server.url)
        owner.sign_in(user.username, TEST_PASSWORD)
        page = owner.request("/account/two-factor")[1]
        secret = re.search(r'user-select-all">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        owner.request(
            "/account/two-factor",
            {"code": pyotp.TOTP(secret).now(), "password": TEST_PASSWORD, "csrf_token": token},
        )
        guessers = []
        for _ in range(12):
            guesser = Client(server.url)
            _, page = guesser.request("/login")
            token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
            guesser.request(
                "/login", {"username": user.username, "password": TEST_PASSWORD, "csrf_token": token}
            )
            _, page = guesser.request("/login/code")
            guesser.token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
            guessers.append(guesser)
        go, answers = threading.Event(), []

        def guess(client, n):
            go.wait()
            answers.append(client.request("/login/code", {"code": f"{n:06d}", "csrf_token": client.token})[0])

        threads = [threading.Thread(target=guess, args=(g, n)) for n, g in enumerate(guessers)]
        for thread in threads:
            thread.start()
        go.set()
        for thread in threads:
            thread.join(30)
    # The account's lock comes after 5 failures: the rest are refused without being tried.
    assert answers.count(422) <= 5 and answers.count(429) >= 6, answers


def test_an_open_live_stream_ends_when_its_session_does(app_factory, create_election, create_user):
    from tests.conftest import LiveServer
    from tests.sse import EventStream, sign_in_cookie

    made = create_election(status="open", precincts=1)
    user = create_user("observer")
    app = app_factory(SESSION_COOKIE_SECURE=False, LIVE_HEARTBEAT_SECONDS=0.2, LIVE_SESSION_CHECK_SECONDS=0.5)
    with LiveServer(app) as server:
        cookie = sign_in_cookie(server.url, user.username, TEST_PASSWORD)
        stream = EventStream(server.url, f"/live/elections/{made.election.id}/stream", cookie)
        try:
            stream.wait_for("turnout")
            other = Browser(app)
            other.sign_in(user.username)
            other.post("/account/sessions/end", token_from="/account")  # sign out everywhere
            stream.wait_for("signed-out", timeout=5)
            with pytest.raises(EOFError):
                stream.next_event(timeout=5)
        finally:
            stream.close()
