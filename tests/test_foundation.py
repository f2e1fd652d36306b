"""The async bridge, configuration, and the app factory."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from pathlib import Path

import pytest
from flask import Blueprint, g, request
from flask_login import current_user

from portal import aio
from portal.auth.roles import EVERY_ROLE, allow
from portal.config import instance_secret_key, load_config


def test_config_reads_toml_then_environment_then_overrides():
    config = load_config(environ={})
    assert config["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert config["SESSION_COOKIE_SECURE"] is True
    env = {"PORTAL_DATABASE_URL": "postgresql+asyncpg://x@db/y", "PORTAL_PAGE_SIZE": "25"}
    config = load_config(environ=env)
    assert config["DATABASE_URL"] == "postgresql+asyncpg://x@db/y"
    assert config["PAGE_SIZE"] == 25
    assert config["DATABASE_URL_FROM_ENV"] is True
    assert load_config({"page_size": 7}, environ=env)["PAGE_SIZE"] == 7


def test_secret_key_is_generated_once_into_instance(tmp_path: Path):
    first = instance_secret_key(tmp_path)
    assert len(first) == 64
    assert instance_secret_key(tmp_path) == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_no_secret_in_config_file():
    text = (Path(__file__).parent.parent / "config.toml").read_text()
    assert "secret_key" not in text.replace("PORTAL_SECRET_KEY", "")


def test_request_context_and_user_are_visible_inside_async_views(app_factory, create_user):
    app = app_factory()
    bp = Blueprint("probe", __name__)

    @bp.get("/probe")
    @allow(*EVERY_ROLE)
    async def probe():
        await asyncio.sleep(0)
        g.seen = request.args["x"]
        return {"x": g.seen, "user": current_user.username, "loop": id(asyncio.get_running_loop())}

    app.register_blueprint(bp)
    user = create_user("observer")
    client = app.test_client()
    client.post("/login", data={"username": user.username, "password": "correct horse battery staple"})

    results = {}

    def call():
        results["first"] = client.get("/probe?x=1").json
        results["second"] = client.get("/probe?x=2").json

    # Flask-Login's synchronous loader waiting on the loop from inside it would hang here.
    worker = threading.Thread(target=call)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "request deadlocked on the event loop"
    assert results["first"]["x"] == "1" and results["second"]["x"] == "2"
    assert results["first"]["user"] == user.username
    assert results["first"]["loop"] == results["second"]["loop"], "one persistent loop per process"


def test_waiting_for_the_loop_from_inside_it_raises_instead_of_hanging():
    async def nested():
        return aio.run(asyncio.sleep(0))

    with pytest.raises(aio.DeadlockError):
        aio.run(nested())


def _child_runs_on_its_own_loop(queue):
    queue.put(aio.run(asyncio.sleep(0, result="child ok")))


def test_loop_starts_again_in_a_forked_child():
    aio.run(asyncio.sleep(0))  # the parent's loop thread exists before the fork
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_runs_on_its_own_loop, args=(queue,))
    child.start()
    child.join(10)
    assert child.exitcode == 0
    assert queue.get(timeout=1) == "child ok"


def test_htmx_flask_bug_is_worked_around():
    from flask import Flask
    from htmx_flask import make_response as htmx_make_response

    from portal.rendering import htmx_headers

    app = Flask(__name__)
    with app.test_request_context():
        # htmx-flask 0.1.0 lacks a comma in its swap list and refuses modifiers.
        with pytest.raises(ValueError):
            htmx_make_response("x", reswap="afterbegin")
        with pytest.raises(ValueError):
            htmx_make_response("x", reswap="innerHTML swap:200ms")
        for value in ("afterbegin", "beforebegin", "innerHTML swap:200ms", "beforeend scroll:bottom"):
            response = htmx_headers(app.response_class("x"), reswap=value)
            assert response.headers["HX-Reswap"] == value
        with pytest.raises(ValueError):
            htmx_headers(app.response_class("x"), reswap="sideways")


def test_pages_are_rendered_off_the_event_loop(app, client_as, create_election):
    """Every template an async view renders is rendered in the request's thread after the coroutine
    returns, never on the loop that serves every other request's queries."""
    from flask import before_render_template

    made = create_election(status="open", precincts=2, contests=[("Mayor", 1, ["Ann Able", "Bob Baker"])])
    observer = client_as("observer")
    seen: list[tuple[str, bool]] = []

    def record(sender, template, context, **extra):
        seen.append((template.name, aio.process_loop.owns_current_thread()))

    before_render_template.connect(record, app)
    try:
        for path in (
            "/elections",
            f"/elections/{made.election.id}",
            f"/elections/{made.election.id}/reports/canvass",
        ):
            assert observer.get(path).status_code == 200
        assert observer.get("/elections", headers={"HX-Request": "true"}).status_code == 200
        assert observer.get("/elections/999999").status_code == 404  # an error page too
    finally:
        before_render_template.disconnect(record, app)
    assert {"elections/elections.html", "elections/election.html", "reports/canvass.html"} <= {
        n for n, _ in seen
    }
    assert [name for name, on_loop in seen if on_loop] == []


def test_exports_are_built_off_the_event_loop(app_factory, create_user):
    """`later` in an async view: the body is built after the coroutine, outside the loop; headers set
    on the response meanwhile are kept."""
    from portal.rendering import Later, later

    app = app_factory()
    bp = Blueprint("probe_later", __name__)

    @bp.get("/probe-later")
    @allow(*EVERY_ROLE)
    async def probe():
        response = later(
            lambda: f"on the loop: {aio.process_loop.owns_current_thread()}", mimetype="text/csv"
        )
        assert isinstance(response, Later) and response.get_data() == b""  # not built yet
        response.headers["X-Probe"] = "kept"
        return response

    app.register_blueprint(bp)
    user = create_user("observer")
    client = app.test_client()
    client.post("/login", data={"username": user.username, "password": "correct horse battery staple"})
    response = client.get("/probe-later")
    assert response.text == "on the loop: False" and response.headers["X-Probe"] == "kept"
    assert response.mimetype == "text/csv"
