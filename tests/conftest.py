"""Fixtures: one fresh PostgreSQL database per test run (dropped at the end), tables emptied before
each test, factories for rows, and a signed-in client per role."""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from portal import aio, create_app, migrate
from portal.config import ROOT, load_config
from portal.db import database, transaction
from portal.embedded_pg import resolve_database_url
from portal.live.hub import close_hub
from portal.models import Base

TEST_PASSWORD = "correct horse battery staple"
TEST_CONFIG = {
    "TESTING": True,
    "WTF_CSRF_ENABLED": False,
    "SESSION_COOKIE_SECURE": False,
    "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
    "DATABASE_URL_FROM_ENV": True,
    "DATABASE_POOL_SIZE": 5,
    "REPORT_PROCESS": False,  # (tests/test_offload.py turns it on)
}


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    base = os.environ.get("PORTAL_TEST_DATABASE_URL") or load_config()["DATABASE_URL"]
    base = resolve_database_url(
        base,
        from_env="PORTAL_TEST_DATABASE_URL" in os.environ,
        embedded=True,
        instance_path=ROOT / "instance",
    )
    name = f"tally_test_{uuid.uuid4().hex[:12]}"
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    migrate.create_database(url)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        migrate.drop_database(url)


def make_app(database_url: str, **overrides):
    return create_app({**TEST_CONFIG, "DATABASE_URL": database_url, **overrides})


@pytest.fixture(scope="session")
def app(database_url):
    app = make_app(database_url)
    yield app
    with app.app_context():
        aio.run(close_hub(app))
        aio.run(database().dispose())


@pytest.fixture
def app_factory(database_url) -> Iterator[Callable]:
    """Another app on the test database, with config overrides; disposed after the test."""
    made = []

    def build(**overrides):
        made.append(make_app(database_url, **overrides))
        return made[-1]

    yield build
    for other in made:
        if "portal.report_process" in other.extensions:
            other.extensions["portal.report_process"].close()
        with other.app_context():
            aio.run(close_hub(other))
            aio.run(database().dispose())


TABLES = ", ".join(table.name for table in Base.metadata.sorted_tables)


@pytest.fixture(autouse=True)
def empty_tables(request):
    if "database_url" not in request.fixturenames and "app" not in request.fixturenames:
        yield
        return
    app = request.getfixturevalue("app")
    with app.app_context():

        async def truncate():
            async with transaction() as db:
                # The audit trail refuses TRUNCATE (a trigger); as superuser, the tests set
                # ordinary triggers aside for this one emptying.
                await db.execute(text("SET LOCAL session_replication_role = replica"))
                await db.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
                scratch = await db.scalars(
                    text("SELECT tablename FROM pg_tables WHERE tablename ~ '^import_(stage|norm)_[0-9]+$'")
                )
                for table in list(scratch):
                    await db.execute(text(f"DROP TABLE {table}"))

        aio.run(truncate())
    yield


@pytest.fixture
def run(app):
    """Run a coroutine on the portal loop inside the app context: run(some_query(...))."""

    def call(coro):
        with app.app_context():
            return aio.run(coro)

    return call


@pytest.fixture
def db_call(run):
    """db_call(fn, *args, **kw): await fn(session, *args, **kw) in a committed transaction."""

    def call(fn, *args, **kwargs):
        async def go():
            async with transaction() as db:
                return await fn(db, *args, **kwargs)

        return run(go())

    return call


@pytest.fixture
def create_user(db_call):
    from portal.users.queries import create_user as create

    counter = iter(range(1, 10_000))

    def factory(role: str = "clerk", username: str | None = None, password: str = TEST_PASSWORD, **kw):
        username = username or f"{role}{next(counter)}"
        return db_call(
            create,
            actor=None,
            username=username,
            display_name=kw.get("display_name", username.title()),
            role=role,
            password=password,
        )

    return factory


@pytest.fixture
def create_precinct(db_call, create_user):
    from portal.precincts.queries import create_precinct as create

    counter = iter(range(1, 10_000))
    state = {}

    def factory(code: str | None = None, name: str | None = None, polling_place: str = "Town Hall"):
        if "actor" not in state:
            state["actor"] = create_user("admin", username="factory-admin")
        n = next(counter)
        return db_call(
            create,
            actor=state["actor"],
            data={
                "code": code or f"P-{n:03d}",
                "name": name or f"Precinct {n}",
                "polling_place": polling_place,
            },
        )

    return factory


class Auth:
    def __init__(self, client):
        self.client = client

    def login(self, username: str, password: str = TEST_PASSWORD, **kw):
        return self.client.post("/login", data={"username": username, "password": password}, **kw)

    def logout(self):
        return self.client.post("/logout")


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def auth(client):
    return Auth(client)


@pytest.fixture
def client_as(app, create_user):
    """client_as("manager"): a test client signed in as a new user with that role."""

    def factory(role: str):
        user = create_user(role)
        c = app.test_client()
        response = Auth(c).login(user.username)
        assert response.status_code == 302, response.text
        c.user = user
        return c

    return factory


HX = {"HX-Request": "true"}


def move_election(client, election_id: int, to: str, **extra):
    """POST a lifecycle move as the confirmation form sends it: with the election's version."""
    page = client.get(f"/elections/{election_id}/status", headers=HX).text
    found = re.search(r'name="version" type="hidden" value="(\d+)"', page)
    data = {"to": to, "version": found.group(1) if found else "", **extra}
    return client.post(f"/elections/{election_id}/status", data=data, headers=HX)


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'"X-CSRFToken": "([^"]+)"', html
    )
    assert match, "no CSRF token on the page"
    return match.group(1)


class LiveServer:
    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def live_server(app_factory):
    """The portal on a real threaded HTTP server on 127.0.0.1, with production cookie and CSRF settings."""
    app = app_factory(WTF_CSRF_ENABLED=True, SESSION_COOKIE_SECURE=True)
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def create_election(db_call, run, create_user, create_precinct):
    """create_election(status="open", contests=[("Mayor", 1, ["Ann", "Bob"])]): an election with its
    precincts, contests and candidates, built through the data layer (status set afterwards). It
    counts election-day ballots only unless `methods` says otherwise (one return per precinct and
    contest, as most tests want)."""
    from types import SimpleNamespace

    from portal.contests.queries import create_candidate, create_contest
    from portal.elections.queries import create_election as create

    counter = iter(range(1, 10_000))

    def factory(
        name=None,
        status="draft",
        precincts=2,
        contests=(("Mayor", 1, ["Ann Able", "Bob Baker"]),),
        methods=("election_day",),
    ):
        n = next(counter)
        actor = create_user("admin")
        places = [create_precinct() for _ in range(precincts)]
        election = db_call(
            create,
            actor=actor,
            name=name or f"Election {n}",
            election_date=__import__("datetime").date(2026, 11, 3),
            kind="general",
            precinct_ids=[p.id for p in places],
            methods=list(methods),
        )
        made, candidates = [], []
        for c, (title, vote_for, names) in enumerate(contests, start=1):
            contest = db_call(
                create_contest,
                actor=actor,
                election_id=election.id,
                office_title=title,
                vote_for=vote_for,
                is_measure=False,
                precinct_ids=None,
            )
            made.append(contest)
            for i, ballot_name in enumerate(names, start=1):
                candidates.append(
                    db_call(
                        create_candidate,
                        actor=actor,
                        election_id=election.id,
                        contest_id=contest.id,
                        code=f"E{n}-C{c}-{i}",
                        ballot_name=ballot_name,
                        party_id=None,
                        status="qualified",
                        write_in=False,
                    )
                )
        if status != "draft":
            db_call(_set_status, election.id, status)
            election.status = status
        return SimpleNamespace(
            election=election, precincts=places, contests=made, candidates=candidates, actor=actor
        )

    return factory


async def _set_status(session, election_id, status):
    await session.execute(
        text("UPDATE election SET status = :s WHERE id = :id"), {"s": status, "id": election_id}
    )


@pytest.fixture
def create_party(db_call, create_user):
    from portal.parties.queries import create_party as create

    def factory(name=None, abbreviation="PTY", colour="#336699"):
        actor = create_user("admin")
        return db_call(
            create,
            actor=actor,
            data={"name": name or f"{abbreviation} Party", "abbreviation": abbreviation, "colour": colour},
        )

    return factory


@pytest.fixture
def create_voters(run, create_precinct):
    """create_voters([("Smith", "John"), ...], precinct=...) or create_voters(count=120): voters loaded
    with COPY like an import; returns their ids in order."""
    from datetime import date

    from portal.demo.seed import copy_voters

    counter = iter(range(1, 10_000_000))

    def factory(names=None, *, count=None, precinct=None, **fields):
        precinct = precinct or create_precinct()
        names = names or [(f"Last{n:05d}", f"First{n:05d}") for n in range(count or 0)]
        records = []
        born = fields.get("date_of_birth", date(1980, 1, 1))
        for last, first in names:
            n = next(counter)
            records.append(
                (
                    fields.get("state_voter_id") or f"T{n:08d}",
                    first,
                    "",
                    last,
                    born,
                    born.year if born else fields["birth_year"],
                    fields.get("address", f"{n} Main St"),
                    "Riverton",
                    "27601",
                    precinct.id,
                    fields.get("party_id"),
                    fields.get("status", "active"),
                    date(2010, 1, 1),
                    None,
                )
            )

        async def go():
            async with transaction() as db:
                await copy_voters(db, records)
                ids = await db.scalars(
                    text("SELECT id FROM voter WHERE state_voter_id = ANY(:ids) ORDER BY id"),
                    {"ids": [r[0] for r in records]},
                )
                return list(ids)

        return run(go())

    return factory


from tests.browser import browser  # noqa: E402, F401 - the headless Chromium fixture, for every test module
