"""Contests and candidates within an election, and the bulk add."""

from __future__ import annotations

import io
import re

import pytest

from tests.conftest import HX


def names_in_order(html: str) -> list[str]:
    return re.findall(r'<td class="candidate-name">([^<]+)', html)


def titles_in_order(html: str) -> list[str]:
    return re.findall(r'<strong class="contest-title">([^<]+)</strong>', html)


@pytest.fixture
def manager(client_as):
    return client_as("manager")


def test_add_contest_and_measure(manager, create_election):
    made = create_election(contests=[])
    base = f"/elections/{made.election.id}"
    response = manager.post(
        f"{base}/contests/new",
        data={"office_title": "Sheriff", "vote_for": "1", "all_precincts": "y"},
        headers=HX,
    )
    assert response.status_code == 200 and "electionChanged" in response.headers["HX-Trigger"]
    manager.post(
        f"{base}/contests/new",
        data={"office_title": "Question 1", "vote_for": "3", "is_measure": "y", "all_precincts": "y"},
        headers=HX,
    )
    page = manager.get(base).text
    assert titles_in_order(page) == ["Sheriff", "Question 1"]
    assert names_in_order(page) == ["Yes", "No"] and "Measure" in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"office_title": "", "vote_for": "1"}, "Enter the title."),
        ({"office_title": "X", "vote_for": "0"}, "Enter how many candidates each voter may choose"),
        ({"office_title": "X", "vote_for": "100"}, "Vote for must be between 1 and 99."),
        ({"office_title": "X", "vote_for": "two"}, "Enter how many candidates each voter may choose"),
        ({"office_title": "X", "vote_for": "1", "all_precincts": ""}, "Choose the precincts"),
    ],
)
def test_bad_contest_input(manager, create_election, data, message):
    made = create_election(contests=[])
    response = manager.post(
        f"/elections/{made.election.id}/contests/new", data={"all_precincts": "y", **data}, headers=HX
    )
    assert response.status_code == 422 and message in response.text
    assert "No contest on the ballot yet." in manager.get(f"/elections/{made.election.id}").text


def test_vote_for_cannot_exceed_candidates(manager, create_election):
    made = create_election()  # Mayor with two candidates
    contest = made.contests[0]
    response = manager.post(
        f"/elections/{made.election.id}/contests/{contest.id}/edit",
        data={
            "office_title": "Mayor",
            "vote_for": "3",
            "all_precincts": "y",
            "version": str(contest.version),
        },
        headers=HX,
    )
    assert response.status_code == 422
    assert "Vote for 3 is more than the 2 qualified candidates of this contest." in response.text


def test_contest_precincts_must_take_part(manager, create_election, create_precinct):
    made = create_election(contests=[])
    outsider = create_precinct(code="OUT-1")
    response = manager.post(
        f"/elections/{made.election.id}/contests/new",
        data={"office_title": "X", "vote_for": "1", "precincts": [str(outsider.id)]},
        headers=HX,
    )
    assert response.status_code == 422 and "is not a valid choice" in response.text


def test_reorder_contests_and_candidates(manager, create_election):
    made = create_election(contests=[("First", 1, ["A1", "A2", "A3"]), ("Second", 1, ["B1", "B2"])])
    base = f"/elections/{made.election.id}"
    manager.post(f"{base}/contests/{made.contests[1].id}/move", data={"direction": "up"}, headers=HX)
    a1, _, a3 = made.candidates[:3]
    manager.post(f"{base}/candidates/{a3.id}/move", data={"direction": "up"}, headers=HX)
    manager.post(f"{base}/candidates/{a1.id}/move", data={"direction": "down"}, headers=HX)
    manager.post(f"{base}/candidates/{a1.id}/move", data={"direction": "down"}, headers=HX)
    manager.post(f"{base}/candidates/{a1.id}/move", data={"direction": "down"}, headers=HX)  # already last
    page = manager.get(base).text
    assert titles_in_order(page) == ["Second", "First"]
    assert names_in_order(page) == ["B1", "B2", "A3", "A2", "A1"]
    # Without JavaScript the same buttons are forms that come back to the page.
    response = manager.post(f"{base}/contests/{made.contests[0].id}/move", data={"direction": "up"})
    assert response.status_code == 303 and response.location.startswith(base)
    assert (
        manager.post(
            f"{base}/contests/{made.contests[0].id}/move", data={"direction": "sideways"}, headers=HX
        ).status_code
        == 200
    )


def _candidate(code="NEW-1", name="New Person", **extra):
    return {"code": code, "ballot_name": name, "party_id": "0", "status": "qualified", **extra}


def test_add_edit_withdraw_delete_candidate(manager, create_election):
    made = create_election()
    base = f"/elections/{made.election.id}"
    contest = made.contests[0]
    assert (
        manager.post(
            f"{base}/contests/{contest.id}/candidates/new", data=_candidate(code="phl-101"), headers=HX
        ).status_code
        == 200
    )
    page = manager.get(base).text
    assert "PHL-101" in page and "New Person" in page
    ann = made.candidates[0]
    response = manager.post(
        f"{base}/candidates/{ann.id}/edit",
        data=_candidate(code=ann.code, name="Ann B. Able", status="withdrawn", version=str(ann.version)),
        headers=HX,
    )
    assert response.status_code == 200
    assert "Ann B. Able" in manager.get(base).text
    bob = made.candidates[1]
    assert manager.post(f"{base}/candidates/{bob.id}/delete", headers=HX).status_code == 200
    assert "Bob Baker" not in manager.get(base).text


def test_stale_candidate_edit_is_refused_then_overwritten_on_purpose(client_as, create_election):
    made = create_election()
    ann = made.candidates[0]
    url = f"/elections/{made.election.id}/candidates/{ann.id}/edit"
    first, second = client_as("manager"), client_as("manager")
    seen = str(ann.version)
    assert (
        first.post(url, data=_candidate(code=ann.code, name="First's", version=seen), headers=HX).status_code
        == 200
    )
    response = second.post(url, data=_candidate(code=ann.code, name="Second's", version=seen), headers=HX)
    assert response.status_code == 409 and f"changed by {first.user.display_name} at" in response.text
    assert "First&#39;s" in response.text and "Second&#39;s" in response.text  # saved now, and yours
    newest = re.search(r'name="version" type="hidden" value="(\d+)"', response.text).group(1)
    assert int(newest) > ann.version
    again = second.post(url, data=_candidate(code=ann.code, name="Second's", version=newest), headers=HX)
    assert again.status_code == 200 and "Second&#39;s" in second.get(f"/elections/{made.election.id}").text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_candidate(code=""), "Enter the candidate code."),
        (_candidate(code="has space"), "Use 1 to 24 letters, digits or hyphens"),
        (_candidate(name=""), "Enter the name as printed."),
        (_candidate(name="n" * 161), "cannot be longer than 160"),
        (_candidate(status="elected"), "Not a valid choice"),
        (_candidate(party_id="999"), "Not a valid choice"),
    ],
)
def test_bad_candidate_input(manager, create_election, data, message):
    made = create_election()
    response = manager.post(
        f"/elections/{made.election.id}/contests/{made.contests[0].id}/candidates/new", data=data, headers=HX
    )
    assert response.status_code == 422 and message in response.text


def test_candidate_code_is_unique_within_the_election(manager, create_election):
    made = create_election(contests=[("One", 1, ["A"]), ("Two", 1, ["B"])])
    other = create_election()
    taken = made.candidates[0].code
    response = manager.post(
        f"/elections/{made.election.id}/contests/{made.contests[1].id}/candidates/new",
        data=_candidate(code=taken),
        headers=HX,
    )
    assert response.status_code == 422 and f"Code {taken} is already used in this election." in response.text
    response = manager.post(
        f"/elections/{other.election.id}/contests/{other.contests[0].id}/candidates/new",
        data=_candidate(code=taken),
        headers=HX,
    )
    assert response.status_code == 200  # another election may reuse it


def test_html_in_candidate_names_is_text(manager, create_election):
    made = create_election()
    manager.post(
        f"/elections/{made.election.id}/contests/{made.contests[0].id}/candidates/new",
        data=_candidate(name='<img src=x onerror="alert(1)">'),
        headers=HX,
    )
    html = manager.get(f"/elections/{made.election.id}").text
    assert "&lt;img src=x" in html and "<img src=x" not in html


def test_a_measure_keeps_its_fixed_choices(manager, create_election):
    made = create_election(contests=[])
    base = f"/elections/{made.election.id}"
    manager.post(
        f"{base}/contests/new",
        data={"office_title": "Q", "vote_for": "1", "is_measure": "y", "all_precincts": "y"},
        headers=HX,
    )
    page = manager.get(base).text
    contest_id = re.search(r'id="contest-(\d+)"', page).group(1)
    response = manager.post(f"{base}/contests/{contest_id}/candidates/new", data=_candidate(), headers=HX)
    assert response.status_code == 422 and "fixed choices Yes and No" in response.text


def test_open_election_refuses_ballot_changes_but_allows_corrections(manager, create_election):
    made = create_election(status="open")
    base = f"/elections/{made.election.id}"
    contest, ann = made.contests[0], made.candidates[0]
    refused = [
        manager.post(
            f"{base}/contests/new",
            data={"office_title": "Late", "vote_for": "1", "all_precincts": "y"},
            headers=HX,
        ),
        manager.post(f"{base}/contests/{contest.id}/candidates/new", data=_candidate(), headers=HX),
        manager.post(f"{base}/contests/{contest.id}/move", data={"direction": "down"}, headers=HX),
        manager.post(f"{base}/candidates/{ann.id}/delete", headers=HX),
        manager.post(f"{base}/contests/{contest.id}/candidates/bulk", data={"lines": "X-1,X"}, headers=HX),
        manager.post(
            f"{base}/contests/{contest.id}/edit",
            data={"office_title": "Mayor", "vote_for": "2", "all_precincts": "y", "version": "1"},
            headers=HX,
        ),
    ]
    for response in refused:
        assert response.status_code == 409 and "fixed" in response.text
    response = manager.post(
        f"{base}/candidates/{ann.id}/edit",
        data=_candidate(code=ann.code, name="Ann Able-Smith", status="withdrawn", version=str(ann.version)),
        headers=HX,
    )
    assert response.status_code == 200
    assert "Ann Able-Smith" in manager.get(base).text


# Bulk add ----------------------------------------------------------------------------------------


def _bulk(client, made, **data):
    return client.post(
        f"/elections/{made.election.id}/contests/{made.contests[0].id}/candidates/bulk",
        data=data,
        headers=HX,
        content_type="multipart/form-data",
    )


def test_bulk_add_all_lines(manager, create_election, create_party):
    create_party(abbreviation="DEM")
    made = create_election(contests=[("Council", 3, [])])
    lines = (
        'code,name,party,write-in\r\nCOU-1,Alice Ames,dem,no\r\ncou-2,"Brown, Bea",,\r\n'
        "COU-3,Carl Cruz,,yes\r\n"
    )
    response = _bulk(manager, made, lines=lines)
    assert response.status_code == 200, response.text
    page = manager.get(f"/elections/{made.election.id}").text
    assert [n.strip() for n in names_in_order(page)] == ["Alice Ames", "Brown, Bea", "Carl Cruz"]
    assert "COU-2" in page and "write-in" in page


def test_bulk_add_is_all_or_nothing_with_line_numbers(manager, create_election):
    made = create_election(contests=[("Council", 3, ["Existing"])])
    existing = made.candidates[0].code
    lines = "\n".join(
        [
            "OK-1,Fine Name",
            f"{existing},Clash",
            "bad code!,X",
            "OK-1,Again",
            "OK-5,",
            "OK-6,Name,NOPE",
            "OK-7,Name,,maybe",
        ]
    )
    response = _bulk(manager, made, lines=lines)
    assert response.status_code == 422 and "Nothing was added." in response.text
    for expected in (
        f"Line 2: code {existing} is already used in this election.",
        "Line 3: code “bad code!” must be 1 to 24 letters, digits or hyphens.",
        "Line 4: code OK-1 is also on line 1.",
        "Line 5: the ballot name is missing.",
        "Line 6: no party with the abbreviation NOPE.",
        "Line 7: write-in must be yes or no, not “maybe”.",
    ):
        assert expected in response.text, expected
    assert "Fine Name" not in manager.get(f"/elections/{made.election.id}").text


def test_bulk_upload_encodings_and_size(manager, create_election):
    made = create_election(contests=[("Council", 2, [])])
    bom = io.BytesIO("\ufeffU-1,Zoë Ünal\nU-2,José Peña\n".encode())
    assert _bulk(manager, made, file=(bom, "c.csv")).status_code == 200
    assert "Zoë Ünal" in manager.get(f"/elections/{made.election.id}").text
    latin = io.BytesIO("L-1,Zoë\n".encode("latin-1"))
    response = _bulk(manager, made, file=(latin, "l.csv"))
    assert response.status_code == 422 and "not UTF-8 text" in response.text
    huge = io.BytesIO(b"H-1,x\n" * 60_000)
    response = _bulk(manager, made, file=(huge, "h.csv"))
    assert response.status_code == 422 and "larger than 256 KB" in response.text
    assert _bulk(manager, made, lines="").status_code == 422
