"""Incidents: reported by staff, escaped, audited, resolved by managers, pushed to the live feed."""

from __future__ import annotations

import pytest

from portal.db import reading
from tests.conftest import TEST_PASSWORD, LiveServer
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
