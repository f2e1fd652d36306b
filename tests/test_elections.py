"""Elections: screens, lifecycle, and the certified lock."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from portal.db import reading, transaction
from portal.signals import election_status_changed
from tests.conftest import HX, move_election

ELECTION = {
    "name": "General 2026",
    "election_date": "2026-11-03",
    "kind": "general",
    "all_precincts": "y",
    "methods": ["election_day", "early", "absentee", "provisional"],
}


def test_list_shows_status_and_counts(client_as, create_election):
    made = create_election(name="County General", status="open")
    html = client_as("observer").get("/elections").text
    assert "County General" in html and "status-open" in html
    assert f"/elections/{made.election.id}" in html


def test_create_goes_to_the_new_election(client_as, create_precinct):
    create_precinct()
    client = client_as("manager")
    response = client.post("/elections/new", data=ELECTION, headers=HX)
    assert response.status_code == 200 and response.headers["HX-Redirect"].startswith("/elections/")
    page = client.get(response.headers["HX-Redirect"]).text
    assert "General 2026" in page and "status-draft" in page and "1 of 1" in page


def test_create_without_javascript(client_as, create_precinct):
    create_precinct()
    response = client_as("manager").post("/elections/new", data=ELECTION)
    assert response.status_code == 303 and response.location.startswith("/elections/")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": ""}, "Enter a name."),
        ({"name": "x" * 161}, "Field cannot be longer than 160 characters."),
        ({"election_date": "03/11/2026"}, "Enter the election date (YYYY-MM-DD)."),
        ({"election_date": "1850-01-01"}, "Enter a date between 2000 and 2100."),
        ({"kind": "coronation"}, "Not a valid choice"),
        ({"all_precincts": ""}, "Choose the precincts that take part"),
    ],
)
def test_bad_election_input(client_as, create_precinct, changes, message):
    create_precinct()
    client = client_as("manager")
    response = client.post("/elections/new", data={**ELECTION, **changes}, headers=HX)
    assert response.status_code == 422 and message in response.text
    assert "No election yet." in client.get("/elections").text


def test_html_in_names_is_text(client_as, create_precinct):
    create_precinct()
    client = client_as("manager")
    client.post("/elections/new", data={**ELECTION, "name": "<script>alert(1)</script>"})
    html = client.get("/elections").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html


def test_participating_precinct_subset(client_as, create_precinct):
    a, b = create_precinct(code="A-1"), create_precinct(code="B-1")
    client = client_as("manager")
    response = client.post("/elections/new", data={**ELECTION, "all_precincts": "", "precincts": [str(b.id)]})
    page = client.get(response.location).text
    assert "1 of 2" in page and "B-1" in page and ">A-1<" not in page
    del a


def test_edit_and_stale_edit(client_as, create_election):
    made = create_election()
    url = f"/elections/{made.election.id}/edit"
    first, second = client_as("manager"), client_as("admin")
    data = {**ELECTION, "version": "1"}
    assert first.post(url, data={**data, "name": "Renamed"}, headers=HX).status_code == 200
    response = second.post(url, data={**data, "name": "Mine"}, headers=HX)
    assert response.status_code == 409 and f"changed by {first.user.display_name}" in response.text
    assert "Renamed" in second.get(f"/elections/{made.election.id}").text


def test_delete_only_a_draft(client_as, create_election):
    draft, opened = create_election(), create_election(status="open")
    client = client_as("manager")
    response = client.post(f"/elections/{draft.election.id}/delete", headers=HX)
    assert response.status_code == 200 and response.headers["HX-Redirect"] == "/elections"
    assert client.get(f"/elections/{draft.election.id}").status_code == 404
    response = client.post(f"/elections/{opened.election.id}/delete", headers=HX)
    assert response.status_code == 409 and "only a draft can be deleted" in response.text


# Lifecycle ---------------------------------------------------------------------------------------


def _move(client, election_id, to, **extra):
    return move_election(client, election_id, to, **extra)


def test_forward_moves_are_audited_and_signalled(client_as, create_election, run):
    from portal.audit.queries import search_events

    made = create_election()
    received = []

    async def receiver(session, *, election, before, actor):
        received.append((before, election.status, actor.username))

    election_status_changed.connect(receiver)
    try:
        client = client_as("manager")
        confirm = client.get(f"/elections/{made.election.id}/status", headers=HX).text
        assert "Open the election" in confirm and "can no longer change" in confirm
        assert _move(client, made.election.id, "open").status_code == 200
        assert _move(client, made.election.id, "closed").status_code == 200
    finally:
        election_status_changed.disconnect(receiver)
    assert received == [("draft", "open", client.user.username), ("open", "closed", client.user.username)]

    async def events():
        async with reading() as db:
            return await search_events(db, action="status")

    assert [(e.before["status"], e.after["status"]) for e in run(events())] == [
        ("open", "closed"),
        ("draft", "open"),
    ]


@pytest.mark.parametrize("role", ["clerk", "observer"])
def test_clerks_and_observers_cannot_move(client_as, create_election, role):
    made = create_election()
    assert _move(client_as(role), made.election.id, "open").status_code == 403


def test_no_backward_or_skipping_moves(client_as, create_election):
    made = create_election(status="closed")
    client = client_as("admin")
    for to in ("open", "draft", "closed"):
        response = _move(client, made.election.id, to)
        assert response.status_code == 409 and "only moves forward" in response.text, to
    draft = create_election()
    assert _move(client, draft.election.id, "closed").status_code == 409


def test_opening_needs_a_complete_ballot(client_as, create_election):
    made = create_election(contests=[("Mayor", 2, ["Only One"])])
    client = client_as("manager")
    page = client.get(f"/elections/{made.election.id}").text
    assert "Mayor: vote for 2 but only 1 qualified candidate." in page
    response = _move(client, made.election.id, "open")
    assert response.status_code == 409 and "cannot open yet" in response.text
    assert "status-draft" in client.get(f"/elections/{made.election.id}").text
    empty = create_election(contests=[])
    assert "The ballot has no contest." in _move(client, empty.election.id, "open").text


def _verify_returns(run, made, precincts):
    async def go():
        async with transaction() as db:
            clerk = await db.scalar(text("SELECT min(id) FROM user_account"))
            checker = await db.scalar(text("SELECT max(id) FROM user_account"))
            for precinct in precincts:
                for contest in made.contests:
                    await db.execute(
                        text(
                            "INSERT INTO precinct_return (election_id, precinct_id, contest_id, method,"
                            " ballots_cast, entered_by_id, status, verified_by_id)"
                            " VALUES (:e, :p, :c, 'election_day', 0, :u, 'verified', :v)"
                        ),
                        {"e": made.election.id, "p": precinct.id, "c": contest.id, "u": clerk, "v": checker},
                    )

    run(go())


def test_certifying_needs_verified_returns_from_every_precinct(client_as, create_election, run):
    made = create_election(status="closed", precincts=3)
    client = client_as("manager")
    confirm = client.get(f"/elections/{made.election.id}/status", headers=HX).text
    assert all(p.code in confirm for p in made.precincts)
    response = _move(client, made.election.id, "certified")
    assert response.status_code == 409 and "3 precincts have no verified returns" in response.text
    _verify_returns(run, made, made.precincts[:2])
    response = _move(client, made.election.id, "certified")
    assert response.status_code == 409 and "1 precinct has no verified returns" in response.text
    assert made.precincts[2].code in response.text and made.precincts[0].code not in response.text
    _verify_returns(run, made, made.precincts[2:])
    assert _move(client, made.election.id, "certified").status_code == 200
    page = client.get(f"/elections/{made.election.id}").text
    assert "status-certified" in page and "Nothing in this election can be edited." in page
    assert "Edit election" not in page and "/edit" not in page


def test_certified_election_refuses_every_write_route(app, client_as, create_election):
    """Every state-changing route with an election in its URL answers 409 for a certified election,
    found from the URL map, so a new route is covered without touching this test."""
    made = create_election(status="certified")
    ids = {
        "election_id": made.election.id,
        "contest_id": made.contests[0].id,
        "candidate_id": made.candidates[0].id,
        "voter_id": 1,
        "precinct_id": made.precincts[0].id,
        "incident_id": 1,
    }
    client = client_as("admin")
    checked = []
    for rule in app.url_map.iter_rules():
        if "election_id" not in rule.arguments or "POST" not in rule.methods:
            continue
        url = rule.build({name: ids[name] for name in rule.arguments})[1]
        data = {"to": "certified", "direction": "up", "name": "x", "method": "in_person", "body": "x"}
        response = client.post(url, data=data, headers=HX)
        assert response.status_code == 409, (rule.endpoint, response.status_code)
        assert "certified" in response.text
        checked.append(rule.endpoint)
    assert len(checked) >= 12, checked
    page = client.get(f"/elections/{made.election.id}").text
    assert "Mayor" in page and "Ann Able" in page  # still readable
