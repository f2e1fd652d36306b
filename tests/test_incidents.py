"""Incidents: reported by staff, escaped, audited, resolved by managers, pushed to the live feed."""

from __future__ import annotations

import re

import pytest

from portal.db import reading
from tests.conftest import HX, TEST_PASSWORD, LiveServer
from tests.sse import EventStream, sign_in_cookie


@pytest.fixture
def opened(create_election):
    return create_election(status="open", precincts=2)


def test_report_and_resolve(opened, client_as, run):
    from portal.audit.queries import search_events

    clerk, manager = client_as("clerk"), client_as("manager")
    base = f"/elections/{opened.election.id}/incidents"
    response = clerk.post(
        base,
        data={
            "precinct_id": str(opened.precincts[0].id),
            "state_voter_id": "nc123456",
            "body": "Machine jammed <script>alert(1)</script>",
        },
    )
    assert response.status_code == 303
    page = manager.get(base).text
    assert "Machine jammed &lt;script&gt;" in page and "<script>alert" not in page
    assert "NC123456" in page and opened.precincts[0].code in page
    incident_id = page.split(f"{base}/")[1].split("/resolve")[0]
    assert clerk.post(f"{base}/{incident_id}/resolve").status_code == 403
    assert manager.post(f"{base}/{incident_id}/resolve").status_code == 303
    assert 'text-bg-secondary">resolved' in manager.get(base).text

    async def actions():
        async with reading() as db:
            return sorted(e.action for e in await search_events(db, entity="incident"))

    assert run(actions()) == ["report", "resolve"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"body": ""}, "Describe the incident."),
        ({"body": "x" * 2001}, "cannot be longer than 2000"),
        ({"body": "ok", "state_voter_id": "bad id"}, "4 to 20 letters and digits."),
        ({"body": "ok", "precinct_id": "99999"}, "Not a valid choice"),
    ],
)
def test_bad_reports(opened, client_as, data, message):
    response = client_as("clerk").post(
        f"/elections/{opened.election.id}/incidents", data={"precinct_id": "0", **data}
    )
    assert response.status_code == 422 and message in response.text


def test_observers_read_the_feed_but_do_not_report(opened, client_as):
    observer = client_as("observer")
    page = observer.get(f"/elections/{opened.election.id}/incidents")
    assert page.status_code == 200 and "Report an incident" not in page.text
    assert observer.post(f"/elections/{opened.election.id}/incidents", data={"body": "x"}).status_code == 403


def test_a_draft_takes_no_incidents(create_election, client_as):
    draft = create_election(precincts=1)
    response = client_as("clerk").post(
        f"/elections/{draft.election.id}/incidents", data={"precinct_id": "0", "body": "x"}
    )
    assert response.status_code == 409 and "draft" in response.text


def test_the_live_feed_shows_a_new_incident(app_factory, opened, create_user, client_as):
    observer = create_user("observer")
    app = app_factory(SESSION_COOKIE_SECURE=False, LIVE_CHANGE_WINDOW_MS=50)
    with LiveServer(app) as server:
        stream = EventStream(
            server.url,
            f"/live/elections/{opened.election.id}/stream",
            sign_in_cookie(server.url, observer.username, TEST_PASSWORD),
        )
        try:
            assert "No incident reported." in stream.wait_for("incidents")["data"]
            client_as("clerk").post(
                f"/elections/{opened.election.id}/incidents",
                data={"precinct_id": "0", "body": "Long queue at the door"},
            )
            assert "Long queue at the door" in stream.wait_for("incidents", "Long queue")["data"]
        finally:
            stream.close()


def test_the_resolve_list_and_the_dashboard_card_are_live(app_factory, opened, create_user, client_as):
    """Reporting and resolving push the resolve list and the dashboard's incident card over SSE (the
    feed always was): no reload needed. An empty list says "No open incidents"."""
    observer = create_user("observer")
    clerk, manager = client_as("clerk"), client_as("manager")
    base = f"/elections/{opened.election.id}/incidents"
    app = app_factory(SESSION_COOKIE_SECURE=False, LIVE_CHANGE_WINDOW_MS=50)
    with LiveServer(app) as server:
        stream = EventStream(
            server.url,
            f"/live/elections/{opened.election.id}/stream",
            sign_in_cookie(server.url, observer.username, TEST_PASSWORD),
        )
        try:
            first = stream.wait_for("incident-resolve")["data"]
            assert "No open incidents." in first and "Resolve</h3>" not in first
            assert "0 open" in stream.wait_for("incident-summary")["data"]
            for body in ("Long queue at the door", "Printer out of paper"):
                clerk.post(base, data={"precinct_id": "0", "body": body})
            listed = stream.wait_for("incident-resolve", "Printer out of paper")["data"]
            if "Long queue" not in listed:  # the two reports fell in two change windows
                listed = stream.wait_for("incident-resolve", "Long queue")["data"]
            assert listed.count('type="submit"') == 2 and "2 open" in listed
            assert f'hx-post="{base}/' in listed and "csrf_token" not in listed  # same bytes for all
            summary = stream.wait_for("incident-summary", "2 open")["data"]
            assert "Printer out of paper" in summary and f'href="{base}"' in summary
            ids = re.findall(rf'hx-post="{base}/(\d+)/resolve"', manager.get(base).text)
            assert len(ids) == 2
            assert manager.post(f"{base}/{ids[0]}/resolve", headers=HX).status_code == 200  # HX-Redirect
            listed = stream.wait_for("incident-resolve", "1 open")["data"]
            assert listed.count('type="submit"') == 1
            assert manager.post(f"{base}/{ids[1]}/resolve").status_code == 303
            assert "No open incidents." in stream.wait_for("incident-resolve", "No open incidents.")["data"]
            assert "0 open" in stream.wait_for("incident-summary", "0 open")["data"]
        finally:
            stream.close()


def test_only_resolvers_pages_swap_in_the_resolve_list(opened, client_as):
    base = f"/elections/{opened.election.id}/incidents"
    manager_page = client_as("manager").get(base).text
    assert 'sse-swap="incident-resolve"' in manager_page and "No open incidents." in manager_page
    assert "Resolve</h3>" not in manager_page  # no empty heading
    client_as("clerk").post(base, data={"precinct_id": "0", "body": "Door locked"})
    manager_page = client_as("manager").get(base).text
    assert "Resolve" in manager_page and 'name="csrf_token"' in manager_page  # works without script too
    for role in ("clerk", "observer"):
        page = client_as(role).get(base).text
        assert 'sse-swap="incident-resolve"' not in page and "/resolve" not in page
