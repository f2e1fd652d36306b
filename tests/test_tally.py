"""The tally (portal/tally/): each choice's votes from the latest revision of every return, the
leaders, precincts reporting and verified, the split by voting method, and turnout over the roll
(as it is while the polls are open, as it was when they closed)."""

from __future__ import annotations

import csv
import io

from portal.db import reading
from tests.conftest import move_election

# The scenarios of the returns' and the methods' tests, shared with them:
from tests.test_methods import as_role, csrf_app, night, split  # noqa: F401 - fixtures
from tests.test_returns import figures, url
from tests.test_returns import night as two_contests  # noqa: F401 - fixture: Mayor and Council, two clerks


def test_tally_adds_the_latest_revisions_and_marks_unofficial(two_contests, run):  # noqa: F811
    from portal.tally.queries import contest_tallies

    made, clerk, other = two_contests
    first, second = made.precincts
    clerk.post(url(made, first), data=figures(made))
    clerk.post(url(made, second), data=figures(made, mayor=(20, 75, 3, 2)))
    clerk.post(url(made, second), data=figures(made, mayor=(30, 65, 3, 2)))  # correction: revision 2 counts

    async def tallies():
        async with reading() as db:
            return await contest_tallies(db, made.election.id)

    mayor, council = run(tallies())
    assert [(c.candidate.ballot_name, c.votes) for c in mayor.candidates] == [
        ("Ann Able", 90),
        ("Bob Baker", 100),
    ]
    assert [c.leading for c in mayor.candidates] == [False, True]
    assert round(mayor.candidates[1].percent, 2) == round(100 * 100 / 190, 2)
    assert (mayor.ballots_cast, mayor.overvotes, mayor.undervotes) == (200, 6, 4)
    assert (mayor.precincts, mayor.entered, mayor.verified, mayor.official) == (2, 2, 0, False)
    assert [c.leading for c in council.candidates] == [True, False, True]  # vote for 2: the top two lead
    confirm = {"mode": "confirm", **{f"revision_{c.id}": "1" for c in made.contests}}
    other.post(url(made, first, "/verify"), data=confirm)
    other.post(
        url(made, second, "/verify"),
        data={
            "mode": "confirm",
            f"revision_{made.contests[0].id}": "2",
            f"revision_{made.contests[1].id}": "1",
        },
    )
    mayor, council = run(tallies())
    assert mayor.official and council.official
    page = clerk.get(f"/elections/{made.election.id}").text
    assert (
        "Official" in page and 'fill="#6c757d"' in page and "Precincts reporting 2 of 2 (2 verified)" in page
    )


def test_tally_totals_with_the_split(split, run):  # noqa: F811
    from portal.tally.queries import contest_tallies

    async def go():
        async with reading() as db:
            return await contest_tallies(db, split.election.id)

    (mayor,) = run(go())
    ann, bob = mayor.candidates
    assert (ann.votes, ann.by_method) == (108, {"election_day": 100, "absentee": 8})
    assert (bob.votes, bob.by_method) == (52, {"election_day": 50, "absentee": 2})
    assert mayor.ballots_cast == 160 and mayor.ballots_by_method == {"election_day": 150, "absentee": 10}
    # Precinct 1 is verified in every method; precinct 2 reports, mail not yet in.
    assert (mayor.precincts, mayor.reporting, mayor.verified, mayor.official) == (2, 2, 1, False)


def test_registration_is_frozen_when_the_polls_close(create_election, create_voters, client_as, run):
    from portal.tally.queries import election_turnout

    made = create_election(status="open", precincts=1)
    create_voters(count=10, precinct=made.precincts[0])
    create_voters(count=3, precinct=made.precincts[0], status="inactive")

    async def turnout():
        async with reading() as db:
            return (await election_turnout(db, made.election.id)).registered

    observer = client_as("observer")
    assert run(turnout()) == 10
    assert (
        "active voters on the roll now" in observer.get(f"/elections/{made.election.id}/reports/turnout").text
    )
    create_voters(count=2, precinct=made.precincts[0])
    assert run(turnout()) == 12  # while the polls are open, the roll as it is
    move_election(client_as("manager"), made.election.id, "closed")
    create_voters(count=5, precinct=made.precincts[0])
    assert run(turnout()) == 12
    page = observer.get(f"/elections/{made.election.id}/reports/turnout").text
    assert "active voters when the polls closed" in page
    rows = list(
        csv.reader(
            io.StringIO(
                observer.get(f"/elections/{made.election.id}/reports/turnout.csv").get_data(as_text=True)
            )
        )
    )
    assert rows[1][2] == "12"
