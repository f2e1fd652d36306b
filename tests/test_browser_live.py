"""Live panels in Chromium through a database fault: the badge says "live" only while the stream is
healthy, shows "reconnecting — figures as of HH:MM:SS" while it is not, and recovers by itself."""

from __future__ import annotations

import os
import re
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from tests.browser import PageErrors, shot, sign_in
from tests.conftest import TEST_PASSWORD, LiveServer
from tests.pgcluster import free_port
from tests.sse import flask_server
from tests.test_live import enter_return
from tests.test_resilience import admin_sql, connections_refused

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent
STALE = re.compile(r"^reconnecting — figures as of \d\d:\d\d:\d\d E[SD]T$")  # the office's clock


def test_the_live_badge_tells_the_truth_through_a_database_fault(
    app_factory, browser, create_election, create_user, database_url, run
):
    from playwright.sync_api import expect

    from portal import aio
    from portal.live.hub import hub_for

    made = create_election(status="open", precincts=1, contests=[("Mayor", 1, ["Ann Able", "Bob Baker"])])
    observer, clerk = create_user("observer"), create_user("clerk")
    app = app_factory(WTF_CSRF_ENABLED=True, LIVE_HEARTBEAT_SECONDS=0.5, LIVE_CHANGE_WINDOW_MS=50)
    with LiveServer(app) as server:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        errors = PageErrors(page)
        sign_in(page, server.url, observer.username, TEST_PASSWORD)
        page.goto(f"{server.url}/elections/{made.election.id}")
        badge = page.locator("#live-results [data-live-badge]")
        expect(badge).to_have_text("live")
        hub = aio.run(hub_for(app))
        deadline = time.monotonic() + 10
        while hub.count() != 1 and time.monotonic() < deadline:  # (the dashboard's stream ends)
            time.sleep(0.05)
        assert hub.count() == 1 and hub.connected.is_set()

        # The server loses its LISTEN connection and cannot get another: every panel says so.
        with connections_refused(database_url):
            admin_sql(database_url, f"SELECT pg_terminate_backend({hub.listener.get_server_pid()})")
            expect(badge).to_have_text(STALE, timeout=5000)
            expect(page.locator("#live-results")).to_have_class(re.compile(r"\blive-stale\b"))
            expect(page.locator("#live-results [data-live-changed]")).to_be_hidden()  # no "last change"
            time.sleep(1.5)  # heartbeats go on saying "stale": the badge stays as it is
            expect(badge).to_have_text(STALE)
            shot(page, "live-reconnecting")

        # The database is back: the hub listens again, the panels are sent afresh, "live" again.
        expect(badge).to_have_text("live", timeout=10_000)
        expect(page.locator("#live-results")).not_to_have_class(re.compile(r"\blive-stale\b"))
        # Changes made while the hub was not listening were not heard: "no change since", not "last change".
        expect(page.locator("#live-results [data-live-changed]")).to_have_text(
            re.compile(r"^· no change since \d\d:\d\d:\d\d E[SD]T$")
        )
        enter_return(run, made, clerk, made.precincts[0], (70, 30))
        expect(page.locator(f"[sse-swap='contest-{made.contests[0].id}']")).to_contain_text(
            "70 · 70.00%", timeout=5000
        )
        expect(page.locator("#live-results [data-live-changed]")).to_have_text(
            re.compile(r"^· last change \d\d:\d\d:\d\d E[SD]T$")
        )
        shot(page, "live-recovered")
        assert errors.messages == []

        context.close()


def test_the_page_notices_a_server_that_goes_silent(database_url, browser, create_election, create_user):
    """No heartbeat for three heartbeats (the server process is frozen, the connection stays open):
    the page says its figures are stale on its own, and says "live" again when they resume."""
    from playwright.sync_api import expect

    made = create_election(status="open", precincts=1)
    observer = create_user("observer")
    port = free_port()
    env = {
        **os.environ,
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_LIVE_HEARTBEAT_SECONDS": "0.5",
        "PORTAL_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
    }
    server = flask_server(port, env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(base)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in(page, base, observer.username, TEST_PASSWORD)
        page.goto(f"{base}/elections/{made.election.id}")
        badge = page.locator("#live-results [data-live-badge]")
        expect(page.locator("#live-results")).to_have_attribute("data-stale-after", "1.5")
        page.wait_for_timeout(1000)
        expect(badge).to_have_text("live")
        server.send_signal(signal.SIGSTOP)
        try:
            expect(badge).to_have_text(STALE, timeout=5000)
        finally:
            server.send_signal(signal.SIGCONT)
        expect(badge).to_have_text("live", timeout=5000)
    finally:
        server.terminate()
        server.wait(10)


def _wait_for(base: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/login", timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
