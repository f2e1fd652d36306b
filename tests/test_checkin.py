"""The check-in desk."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select

from portal.db import reading, transaction
from portal.models import CheckIn, Voter
from tests.conftest import HX


@pytest.fixture
def desk(client_as, create_election, create_voters):
    made = create_election(status="open", precincts=1)
    voter_ids = create_voters([("Smith", "John"), ("Smith", "Jane")], precinct=made.precincts[0])
    clerk = client_as("clerk")
    return made, voter_ids, clerk


def _issue(client, made, voter_id, method="in_person"):
    return client.post(
        f"/check-in/{made.election.id}/voters/{voter_id}", data={"method": method, "q": "smith"}, headers=HX
    )


def test_find_and_issue_a_ballot(desk, run):
    made, (john, _), clerk = desk
    page = clerk.get(f"/check-in?election={made.election.id}&q=smith+jo")
    assert page.status_code == 200 and "Smith, John" in page.text and "Issue ballot" in page.text
    response = _issue(clerk, made, john)
    assert response.status_code == 200
    assert "Checked in" in response.text and 'hx-swap-oob="true"' in response.text
    assert "1 of 2 · 50.00%" in response.text

    async def state():
        async with reading() as db:
            voter = await db.get(Voter, john)
            check_in = await db.scalar(select(CheckIn).where(CheckIn.voter_id == john))
            return voter, check_in

    voter, check_in = run(state())
    assert voter.last_voted_on == made.election.election_date and voter.version == 1
    assert check_in.method == "in_person" and check_in.user_id == clerk.user.id
    assert check_in.precinct_id == made.precincts[0].id


def test_second_check_in_is_refused_with_the_first(desk):
    made, (john, _), clerk = desk
    _issue(clerk, made, john, "early")
    other = _issue(clerk, made, john, "in_person")
    assert other.status_code == 409
    assert "John Smith was already checked in" in other.text and "early" in other.text
    assert made.precincts[0].code in other.text and clerk.user.display_name in other.text
    page = clerk.get(f"/check-in?election={made.election.id}&q=smith+jo").text
    assert "Checked in" in page and "Issue ballot" not in page


def test_simultaneous_check_ins_store_one(desk, run):
    from portal.checkin.queries import AlreadyCheckedIn, record_check_in

    made, (john, _), clerk = desk

    async def attempt():
        async with transaction() as db:
            await record_check_in(
                db, actor=clerk.user, election_id=made.election.id, voter_id=john, method="in_person"
            )

    async def both():
        return await asyncio.gather(attempt(), attempt(), return_exceptions=True)

    outcomes = run(both())
    assert sorted(type(o).__name__ for o in outcomes) == ["AlreadyCheckedIn", "NoneType"]
    assert any(isinstance(o, AlreadyCheckedIn) for o in outcomes)


def test_only_open_elections(client_as, create_election, create_voters):
    for status in ("draft", "closed", "certified"):
        made = create_election(status=status, precincts=1)
        [voter] = create_voters([("Lee", "Al")], precinct=made.precincts[0])
        response = _issue(client_as("clerk"), made, voter)
        assert response.status_code == 409 and "only while it is open" in response.text


def test_inactive_voters_and_outside_precincts_get_provisional_only(
    client_as, create_election, create_voters, create_precinct
):
    made = create_election(status="open", precincts=1)
    [inactive] = create_voters([("Gray", "Gil")], precinct=made.precincts[0], status="inactive")
    [outsider] = create_voters([("Far", "Fay")], precinct=create_precinct(code="ELSE-1"))
    clerk = client_as("clerk")
    response = _issue(clerk, made, inactive)
    assert response.status_code == 409 and "inactive on the roll: only a provisional ballot" in response.text
    assert _issue(clerk, made, inactive, "provisional").status_code == 200
    response = _issue(clerk, made, outsider)
    assert response.status_code == 409 and "does not take part" in response.text
    assert _issue(clerk, made, outsider, "provisional").status_code == 200
    assert _issue(clerk, made, outsider, "carrier pigeon").status_code == 409


def test_check_ins_are_audited(desk, run):
    from portal.audit.queries import search_events

    made, (john, _), clerk = desk
    _issue(clerk, made, john)

    async def events():
        async with reading() as db:
            return await search_events(db, action="check_in")

    [event] = run(events())
    assert event.entity_id == str(john) and event.after["method"] == "in_person"


def test_check_ins_cannot_be_linked_to_votes():
    """Ballot secrecy: a check-in row names the voter and the election, nothing about choices."""
    from portal.models import CheckIn

    columns = {c.key for c in sa_inspect(CheckIn).columns}
    assert columns == {
        "id",
        "voter_id",
        "election_id",
        "precinct_id",
        "method",
        "checked_in_at",
        "user_id",
        # provisional adjudication and voids: staff, times and reasons, nothing about a choice
        "provisional_status",
        "decided_by_id",
        "decided_at",
        "decision_reason",
        "voided_at",
        "voided_by_id",
        "void_reason",
    }
    referenced = {fk.column.table.name for fk in CheckIn.__table__.foreign_keys}
    assert referenced == {"voter", "election", "precinct", "user_account"}


def test_desk_without_an_open_election(client_as):
    assert "No election is open." in client_as("clerk").get("/check-in").text


def test_desk_search_fragment(desk):
    made, _, clerk = desk
    fragment = clerk.get(f"/check-in?election={made.election.id}&q=smith", headers=HX).text
    assert fragment.lstrip().startswith('<div id="checkin-results"')
    assert len(re.findall(r'id="checkin-voter-\d+"', fragment)) == 2


def test_the_desk_reads_checked_in_voters_in_a_fixed_number_of_queries(
    client_as, create_election, create_voters, app
):
    """Each voter already checked in is described with precinct and clerk: read for all of them at
    once, not two queries per voter (a statewide desk search ran 36-38 statements)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    made = create_election(status="open", precincts=4)
    voters = [create_voters([("Smith", f"Voter{n}")], precinct=made.precincts[n % 4])[0] for n in range(8)]
    clerks = [client_as("clerk") for _ in range(3)]
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    def search() -> int:
        statements.clear()
        page = clerks[0].get(f"/check-in?election={made.election.id}&q=smith", headers=HX)
        assert page.status_code == 200
        return len(statements), page.text.count("Checked in")

    event.listen(Engine, "before_cursor_execute", count)
    try:
        _issue(clerks[0], made, voters[0])
        one = search()
        for n, voter in enumerate(voters[1:], start=1):
            assert _issue(clerks[n % 3], made, voter).status_code == 200
        eight = search()
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert one[1] == 1 and eight[1] == 8
    assert eight[0] == one[0], (one, eight)
