"""Parties: created, listed with their colours, refused when a name or an abbreviation is taken,
and kept while a candidate stands for them."""

from __future__ import annotations

from tests.conftest import HX


def test_parties_crud_and_refusals(client_as, create_party, create_election, db_call):
    client = client_as("manager")
    response = client.post(
        "/parties/new", data={"name": "Forward", "abbreviation": "fwd", "colour": "#12AB34"}, headers=HX
    )
    assert response.status_code == 200
    html = client.get("/parties").text
    assert "Forward" in html and "FWD" in html and 'fill="#12ab34"' in html
    for data, message in [
        (
            {"name": "Other", "abbreviation": "FWD", "colour": "#000000"},
            "FWD is already the abbreviation of Forward.",
        ),
        (
            {"name": "forward", "abbreviation": "F2", "colour": "#000000"},
            "A party named Forward already exists.",
        ),
        ({"name": "Other", "abbreviation": "O", "colour": "red"}, "A colour like #1f5fbf."),
        ({"name": "", "abbreviation": "O", "colour": "#000000"}, "Enter the party&#39;s name."),
    ]:
        response = client.post("/parties/new", data=data, headers=HX)
        assert response.status_code == 422 and message in response.text, message
    party = create_party(abbreviation="USED")
    made = create_election()
    from portal.contests.queries import update_candidate

    ann = made.candidates[0]
    db_call(
        update_candidate,
        actor=made.actor,
        election_id=made.election.id,
        candidate_id=ann.id,
        seen_version=ann.version,
        code=ann.code,
        ballot_name=ann.ballot_name,
        party_id=party.id,
        status="qualified",
        write_in=False,
    )
    response = client.post(f"/parties/{party.id}/delete", headers=HX)
    assert response.status_code == 409 and "is the party of 1 candidate" in response.text


def test_stale_party_edit_is_refused_with_both_values(client_as, create_party):
    party = create_party(name="Forward", abbreviation="FWD")
    url = f"/parties/{party.id}/edit"
    first, second = client_as("manager"), client_as("admin")
    data = {"abbreviation": "FWD", "colour": "#336699", "version": str(party.version)}
    assert first.post(url, data={**data, "name": "Forward Now"}, headers=HX).status_code == 200
    response = second.post(url, data={**data, "name": "Forward Later"}, headers=HX)
    assert response.status_code == 409 and f"changed by {first.user.display_name} at" in response.text
    assert "Forward Now" in response.text and "Forward Later" in response.text
    assert "Forward Now" in second.get("/parties").text  # nothing overwritten
