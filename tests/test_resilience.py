"""Honest answers and live panels when connections fail: real faults on the test database
(backends terminated with pg_terminate_backend, new connections refused with ALLOW_CONNECTIONS),
never the machine's server restarted. The whole-server restart is tests/test_faults.py."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time

import pytest
from flask import Blueprint
from sqlalchemy import text

from portal import aio
from portal.auth.roles import allow
from portal.db import is_connection_failure, transaction
from tests.conftest import HX, TEST_PASSWORD, LiveServer
from tests.sse import EventStream, sign_in_cookie


def _name(database_url: str) -> str:
    return database_url.rsplit("/", 1)[1].split("?")[0]


async def _admin(database_url: str, sql: str):
    """One statement on a connection of its own, to the server's `postgres` database (not the
    app's pool, and not refused when the test database refuses connections)."""
    import asyncpg

    postgres = database_url.rsplit("/", 1)[0] + "/postgres"
    connection = await asyncpg.connect(postgres.replace("postgresql+asyncpg", "postgresql"))
    try:
        return await connection.fetch(sql)
    finally:
        await connection.close()


def admin_sql(database_url: str, sql: str):
    # In a thread of its own: a Playwright test's thread already runs an event loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _admin(database_url, sql)).result()


def terminate_all_but_admin(database_url: str) -> list[int]:
    rows = admin_sql(
        database_url,
        "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{_name(database_url)}'",
    )
    return [row["pid"] for row in rows]


def _wait_until_gone(database_url: str, pids: list[int]) -> None:
    deadline = time.monotonic() + 10
    listed = ",".join(map(str, pids))
    while admin_sql(database_url, f"SELECT 1 FROM pg_stat_activity WHERE pid IN ({listed})"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.2)  # and each client has read the server's goodbye


@contextlib.contextmanager
def connections_refused(database_url: str):
    """New connections to the test database are refused (FATAL at connect) until the block ends."""
    admin_sql(database_url, f'ALTER DATABASE "{_name(database_url)}" ALLOW_CONNECTIONS false')
    try:
        yield
    finally:
        admin_sql(database_url, f'ALTER DATABASE "{_name(database_url)}" ALLOW_CONNECTIONS true')


# What counts as a lost connection ------------------------------------------------------------------


def test_lost_and_refused_connections_are_told_from_other_errors(database_url, run):
    from sqlalchemy.ext.asyncio import create_async_engine

    async def terminated_mid_session():
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                pid = await connection.scalar(text("SELECT pg_backend_pid()"))
                await _admin(database_url, f"SELECT pg_terminate_backend({pid})")
                with pytest.raises(Exception) as raised:
                    await connection.execute(text("SELECT 1"))
                return raised.value
        finally:
            await engine.dispose()

    async def refused():
        engine = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nothing")
        try:
            with pytest.raises(Exception) as raised:
                async with engine.connect():
                    pass
            return raised.value
        finally:
            await engine.dispose()

    async def refused_statement():
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                with pytest.raises(Exception) as raised:
                    await connection.execute(text("SELECT 1/0"))
                return raised.value
        finally:
            await engine.dispose()

    async def taken_offline():  # ALTER DATABASE .. ALLOW_CONNECTIONS false: 55000 at connect
        engine = create_async_engine(database_url)
        try:
            with pytest.raises(Exception) as raised:
                async with engine.connect():
                    pass
            return raised.value
        finally:
            await engine.dispose()

    assert is_connection_failure(asyncio.run(terminated_mid_session()))
    assert is_connection_failure(asyncio.run(refused()))
    with connections_refused(database_url):
        assert is_connection_failure(asyncio.run(taken_offline()))
    assert not is_connection_failure(asyncio.run(refused_statement()))  # division by zero: a 500
    try:
        open("/nonexistent/file")  # noqa: SIM115 - a missing file is not a lost database
    except OSError as error:
        assert not is_connection_failure(error)


# Honest answers ------------------------------------------------------------------------------------


@pytest.fixture
def probe_app(app_factory, create_user, database_url):
    """An app with two extra routes that write a precinct and then meet a real connection failure:
    after the commit, or during it."""
    from portal.auth.current import current_actor
    from portal.precincts.queries import create_precinct

    app = app_factory(PROPAGATE_EXCEPTIONS=False)
    bp = Blueprint("faulty", __name__)

    async def write(db, code):
        data = {"code": code, "name": code, "polling_place": ""}
        await create_precinct(db, actor=current_actor(), data=data)

    @bp.post("/faulty/after-commit")
    @allow("admin")
    async def after_commit():
        async with transaction() as db:
            await write(db, "AFTER-1")
        async with transaction() as db:  # a later read on a connection that is then cut
            pid = await db.scalar(text("SELECT pg_backend_pid()"))
            await _admin(database_url, f"SELECT pg_terminate_backend({pid})")
            await db.execute(text("SELECT 1"))
        return "unreachable"

    @bp.post("/faulty/during-commit")
    @allow("admin")
    async def during_commit():
        async with transaction() as db:
            await write(db, "DURING-1")
            pid = await db.scalar(text("SELECT pg_backend_pid()"))
            await _admin(database_url, f"SELECT pg_terminate_backend({pid})")
        return "unreachable"

    @bp.post("/faulty/before-commit")
    @allow("admin")
    async def before_commit():
        async with transaction() as db:
            pid = await db.scalar(text("SELECT pg_backend_pid()"))
            await _admin(database_url, f"SELECT pg_terminate_backend({pid})")
            await write(db, "BEFORE-1")
        return "unreachable"

    app.register_blueprint(bp)
    client = app.test_client()
    admin = create_user("admin")
    signed_in = client.post("/login", data={"username": admin.username, "password": TEST_PASSWORD})
    assert signed_in.status_code == 302
    return client


def _stored(run, code: str) -> bool:
    from portal.db import reading

    async def go():
        async with reading() as db:
            return await db.scalar(text("SELECT count(*) FROM precinct WHERE code = :c"), {"c": code})

    return bool(run(go()))


def test_a_failure_after_the_commit_says_the_change_was_saved(probe_app, run):
    response = probe_app.post("/faulty/after-commit", headers=HX)
    assert response.status_code == 503
    assert "Your change was saved" in response.text and "Nothing was saved" not in response.text
    assert _stored(run, "AFTER-1")


def test_a_failure_during_the_commit_says_the_outcome_is_unknown(probe_app, run):
    response = probe_app.post("/faulty/during-commit")
    assert response.status_code == 503
    assert "may or may not have been stored" in response.text
    assert "Nothing was saved" not in response.text
    assert not _stored(run, "DURING-1")  # (the server died before COMMIT: here nothing was stored)


def test_noting_when_a_session_was_last_seen_is_not_the_change(probe_app, run):
    """An hour-old session is noted as seen (a commit of its own) before the view runs; a failure
    in the view must still say "Nothing was saved"."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from portal.models import UserSession

    async def age():
        async with transaction() as db:
            await db.execute(update(UserSession).values(last_seen_at=datetime.now(UTC) - timedelta(hours=1)))

    run(age())
    response = probe_app.post("/faulty/before-commit")
    assert response.status_code == 503 and "Nothing was saved" in response.text
    assert "Your change was saved" not in response.text


def test_a_failure_before_the_commit_says_nothing_was_saved(probe_app, run):
    response = probe_app.post("/faulty/before-commit")
    assert response.status_code == 503 and "Nothing was saved" in response.text
    assert not _stored(run, "BEFORE-1")


def test_pooled_connections_cut_by_a_restart_cost_no_request(app_factory, client_as, database_url):
    """Every backend of the database is terminated (what a restart does to a pool); the next
    requests on the same app are served, because each pooled connection is checked before use."""
    app = app_factory()
    client = app.test_client()
    user = client_as("manager").user
    client.post("/login", data={"username": user.username, "password": TEST_PASSWORD})
    for _ in range(3):
        assert client.get("/precincts").status_code == 200
    terminated = terminate_all_but_admin(database_url)
    assert terminated
    _wait_until_gone(database_url, terminated)  # the server closed them: "once the database is back"
    for _ in range(5):
        assert client.get("/precincts").status_code == 200


def test_check_in_answer_is_read_inside_its_transaction():
    """The phantom check-in of the outage report: the clerk's answer was read after the commit."""
    import inspect

    from portal.checkin import routes

    source = inspect.getsource(routes.record)
    assert "reading()" not in source


# Health --------------------------------------------------------------------------------------------


def test_health_needs_no_sign_in_and_tells_only_what_it_should(client):
    response = client.get("/health")
    assert response.status_code == 200 and response.is_json
    body = response.get_json()
    assert body == {
        "status": "ok",
        "database": True,
        "live": {"listening": True, "streams": body["live"]["streams"]},
        "version": body["version"],
    }
    assert response.headers["Cache-Control"] == "no-store"


def test_health_is_503_when_the_database_does_not_answer(app_factory):
    app = app_factory(DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:1/nothing")
    response = app.test_client().get("/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable" and body["database"] is False
    assert body["live"]["listening"] is False
    assert "127.0.0.1" not in response.text  # no addresses, no error text


# The live hub ---------------------------------------------------------------------------------------


@pytest.fixture
def watched(app_factory, create_election, create_user):
    made = create_election(status="open", precincts=1, contests=[("Mayor", 1, ["Ann Able", "Bob Baker"])])
    observer = create_user("observer")
    app = app_factory(
        SESSION_COOKIE_SECURE=False,
        LIVE_HEARTBEAT_SECONDS=0.3,
        LIVE_CHANGE_WINDOW_MS=50,
        LIVE_SUBSCRIBE_WAIT_SECONDS=0.5,
    )
    with LiveServer(app) as server:
        yield made, server, sign_in_cookie(server.url, observer.username, TEST_PASSWORD), app


def _hub(app):
    from portal.live.hub import hub_for

    hub = aio.run(hub_for(app))
    deadline = time.monotonic() + 5
    while not hub.connected.is_set() and time.monotonic() < deadline:
        time.sleep(0.02)
    return hub


def _announce(run, election_id):
    from portal.live.hub import announce

    async def go():
        async with transaction() as db:
            await announce(db, election_id, "turnout")

    run(go())


def test_the_hub_survives_its_connection_being_cut_and_refused(watched, database_url, run):
    made, server, cookie, app = watched
    path = f"/live/elections/{made.election.id}/stream"
    stream = EventStream(server.url, path, cookie)
    try:
        stream.wait_for("turnout")
        hub = _hub(app)
        renders = hub.renders
        with connections_refused(database_url):
            admin_sql(database_url, f"SELECT pg_terminate_backend({hub.listener.get_server_pid()})")
            stream.wait_for("stale", timeout=5)  # told at once, not left showing "live"
            stream.wait_for("stale", timeout=5)  # and every heartbeat says so while it lasts
            assert not hub.connected.is_set()
            time.sleep(1.5)  # several refused reconnections: the supervisor keeps going
            assert hub.supervisor is not None and not hub.supervisor.done()
            # A new browser is answered at once (stale, retry) and its thread freed: no hang.
            started = time.monotonic()
            late = EventStream(server.url, path, cookie)
            assert late.wait_for("stale", timeout=5)
            with pytest.raises(EOFError):
                late.next_event(timeout=5)
            late.close()
            assert time.monotonic() - started < 3
        # Allowed again: the hub listens again and renders every watched panel afresh.
        fresh = stream.wait_for("turnout", timeout=10)
        assert hub.connected.is_set() and hub.renders > renders and hub.reconnects >= 1
        assert "Turnout" in fresh["data"]
        _announce(run, made.election.id)  # and a change after the fault still arrives
        stream.wait_for("turnout", timeout=5)
        stream.wait_for("heartbeat", timeout=5)
    finally:
        stream.close()


def test_a_quiet_stream_sends_heartbeats_the_page_can_see(watched):
    made, server, cookie, _ = watched
    stream = EventStream(server.url, f"/live/elections/{made.election.id}/stream", cookie)
    try:
        stream.wait_for("turnout")
        assert stream.wait_for("heartbeat", timeout=3)["data"] == "ok"
    finally:
        stream.close()


def test_the_page_knows_how_long_to_wait_for_a_heartbeat(client_as, create_election):
    made = create_election(status="open", precincts=1)
    page = client_as("observer").get(f"/elections/{made.election.id}").text
    assert 'data-live data-stale-after="15"' in page and "data-live-badge" in page
