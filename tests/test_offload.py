"""Reports are served by each worker's report process (portal/offload.py): the same answers as the
worker's own, from another process; the worker serves them itself while that process starts or
after it died, and starts another."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest

from tests.conftest import Auth


def summary_of(made) -> str:
    return f"/elections/{made.election.id}/reports/summary.csv"


@pytest.fixture
def offloading(app_factory, create_user):
    """An app with its report process listening, and a client of it signed in as an observer."""
    app = app_factory(REPORT_PROCESS=True)
    process = app.extensions["portal.report_process"]
    assert process.wait_ready(60), "the report process did not start"
    client = app.test_client()
    assert Auth(client).login(create_user("observer").username).status_code == 302
    return app, process, client


def test_reports_come_from_the_report_process_with_the_workers_bytes(offloading, client_as, create_election):
    _app, process, client = offloading
    made = create_election(status="open", precincts=3)
    in_worker = client_as("observer")  # (the session-wide app: no report process)
    assert process.pid not in (None, os.getpid())
    for path in ("canvass.csv", "summary.csv", "turnout.csv", "results.json"):
        url = f"/elections/{made.election.id}/reports/{path}"
        served = process.served
        answer, expected = client.get(url), in_worker.get(url)
        assert answer.status_code == 200, (path, answer.status_code)
        assert process.served == served + 1, path
        assert answer.content_type == expected.content_type
        assert answer.headers["Content-Disposition"] == expected.headers["Content-Disposition"]
        if path != "results.json":  # (the NIST export of an open election carries the time it was made)
            assert answer.data == expected.data, path
    page = client.get(f"/elections/{made.election.id}/reports/canvass")
    assert page.status_code == 200 and made.election.name in page.text
    assert "Content-Security-Policy" in page.headers  # (the app's own headers, as the worker sets them)
    assert client.head(f"/elections/{made.election.id}/reports/canvass").status_code == 200


def test_the_report_process_keeps_the_rules(offloading, create_election):
    app, process, client = offloading
    made = create_election(status="open")
    served = process.served
    assert client.get(f"/elections/{made.election.id}/reports/nonsense").status_code == 404
    assert client.get("/elections/999999/reports/canvass.csv").status_code == 404
    signed_out = app.test_client().get(f"/elections/{made.election.id}/reports/canvass")
    assert signed_out.status_code == 302 and "/login" in signed_out.headers["Location"]
    assert process.served == served + 3
    assert client.get("/elections").status_code == 200  # other pages stay in the worker
    assert client.get(f"/elections/{made.election.id}/reports").status_code == 200  # (the index too)
    assert process.served == served + 3


def test_a_dead_report_process_is_replaced_and_no_report_is_lost(offloading, create_election):
    _app, process, client = offloading
    url = summary_of(create_election(status="open"))
    assert client.get(url).status_code == 200
    first = process.pid
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process._process.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    served = process.served
    answer = client.get(url)  # served by the worker itself while another process starts
    assert answer.status_code == 200 and "Mayor" in answer.text
    assert process.served == served
    assert process.wait_ready(60)
    assert process.pid not in (None, first, os.getpid())
    assert client.get(url).status_code == 200
    assert process.served == served + 1


def test_under_gunicorn_each_worker_starts_its_report_process_and_ends_it(
    database_url, tmp_path, create_election, create_user
):
    """As deployed: gunicorn forks its workers, each spawns its own report process at its first
    report (nice 10), and stopping gunicorn leaves none behind."""
    import psutil

    from tests.conftest import TEST_PASSWORD
    from tests.faults import Client, Portal

    made = create_election(status="open")
    clerk = create_user("clerk")
    portal = Portal(database_url, workers=2, log_dir=tmp_path)
    portal.start()
    helpers: list[psutil.Process] = []
    try:
        client = Client(portal.base)  # (a new connection a request: the workers share them)
        client.sign_in(clerk.username, TEST_PASSWORD)
        url = f"/elections/{made.election.id}/reports/summary.csv"
        answers = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, body = client.request(url)
            assert status == 200, body[:300]
            answers.add(body)
            workers = psutil.Process(portal.process.pid).children()
            helpers = [
                child
                for worker in workers
                for child in worker.children()
                if "spawn_main" in " ".join(child.cmdline())
                and "resource_tracker" not in " ".join(child.cmdline())
            ]
            if len(helpers) == len(workers) == 2:
                break
            time.sleep(0.2)
        assert len(helpers) == 2, "each worker starts a report process of its own"
        while time.monotonic() < deadline and any(helper.nice() != 10 for helper in helpers):
            time.sleep(0.1)  # (a process lowers its priority once it runs the portal's code)
        assert all(helper.nice() == 10 for helper in helpers)
        for _ in range(6):  # served by them once they listen
            status, body = client.request(url)
            assert status == 200
            answers.add(body)
        assert len(answers) == 1, "the same CSV from the workers and their report processes"
    finally:
        portal.stop()
    _, alive = psutil.wait_procs(helpers, timeout=10)
    assert not alive, "a report process outlived gunicorn"


def test_a_report_process_that_hangs_is_replaced_and_the_worker_answers(offloading, create_election):
    _app, process, client = offloading
    url = summary_of(create_election(status="open"))
    assert client.get(url).status_code == 200
    frozen = process.pid
    process.answer_seconds = 1
    os.kill(frozen, signal.SIGSTOP)  # (it takes the report, and never answers)
    try:
        served = process.served
        started = time.monotonic()
        answer = client.get(url)
        assert answer.status_code == 200 and "Mayor" in answer.text
        assert process.served == served and time.monotonic() - started < 10
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(frozen, signal.SIGCONT)
    assert process.wait_ready(60)
    assert process.pid not in (None, frozen)
    assert client.get(url).status_code == 200 and process.served == served + 1


def test_a_report_process_that_cannot_start_is_retried_with_a_pause(offloading, create_election):
    _app, process, client = offloading
    url = summary_of(create_election(status="open"))
    process.overrides["TIME_ZONE"] = "Nowhere/Nothing"  # (create_app stops on it in a new process)
    os.kill(process.pid, signal.SIGKILL)
    process._process.join(10)
    assert client.get(url).status_code == 200  # served by the worker; another process starts...
    process._process.join(30)
    assert process._process.exitcode == 1 and not process._ready.is_set()  # ...and ends at once
    assert client.get(url).status_code == 200  # the worker again; a third process starts at once
    failed = process._process
    failed.join(30)
    assert failed.exitcode == 1
    assert client.get(url).status_code == 200  # the worker; no fourth process for a while
    assert process._process is failed and process._retry_at > time.monotonic()
    process.overrides.pop("TIME_ZONE")
    process._retry_at = 0.0  # (the pause is over)
    assert process.wait_ready(60)
    served = process.served
    assert client.get(url).status_code == 200 and process.served == served + 1
    assert process._failures == 0


def test_a_stray_connection_does_not_stop_the_report_process(offloading, create_election):
    import socket

    _app, process, client = offloading
    url = summary_of(create_election(status="open"))
    stray = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stray.connect(process._address)
    stray.sendall(b"\x00\x00\x00\x08not a pickle")
    stray.close()
    served = process.served
    assert client.get(url).status_code == 200 and process.served == served + 1


def test_every_offloaded_page_is_under_the_reports_path(app):
    """The middleware routes a request a second time only when its path has REPORTS_PATH in it."""
    from portal.offload import OFFLOADED, REPORTS_PATH

    rules = [rule.rule for rule in app.url_map.iter_rules() if rule.endpoint in OFFLOADED]
    assert len(rules) == len(OFFLOADED)
    assert all(REPORTS_PATH in rule for rule in rules), rules


def test_the_report_process_rides_out_a_database_restart(offloading, create_election, database_url):
    """Its pooled connections cut (what a restart does): the next reports are served by it as
    before; while the database refuses connections it answers 503 as the worker would, then 200."""
    from tests.test_resilience import _wait_until_gone, connections_refused, terminate_all_but_admin

    _app, process, client = offloading
    url = summary_of(create_election(status="open"))
    for _ in range(3):
        assert client.get(url).status_code == 200
    served = process.served
    terminated = terminate_all_but_admin(database_url)
    _wait_until_gone(database_url, terminated)
    for _ in range(3):
        assert client.get(url).status_code == 200
    assert process.served == served + 3
    with connections_refused(database_url):
        terminated = terminate_all_but_admin(database_url)
        _wait_until_gone(database_url, terminated)
        refused = client.get(url)
        assert refused.status_code == 503 and "not answering" in refused.text
        assert process.served == served + 4  # (its own answer, relayed)
    assert client.get(url).status_code == 200 and process.served == served + 5
