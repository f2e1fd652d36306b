"""Returns entry and verification (what the tally makes of them: tests/test_tally.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.db import reading
from portal.models import PrecinctReturn
from tests.conftest import HX, move_election


@pytest.fixture
def night(create_election, client_as):
    """An open election, two precincts, Mayor (vote for 1: Ann, Bob) and Council (vote for 2: Cy, Di, Ed)."""
    made = create_election(
        status="open",
        precincts=2,
        contests=[
            ("Mayor", 1, ["Ann Able", "Bob Baker"]),
            ("Council", 2, ["Cy Cole", "Di Dunn", "Ed Eng"]),
        ],
    )
    return made, client_as("clerk"), client_as("clerk")


def figures(made, mayor=(60, 35, 3, 2), council=(50, 40, 90, 10, 10)):
    """Form data: mayor = (ann, bob, over, under) for 100 ballots; council = (cy, di, ed, over, under) x2."""
    mayor_contest, council_contest = made.contests
    ann, bob, cy, di, ed = made.candidates
    data = {
        f"c{mayor_contest.id}_{ann.id}": mayor[0],
        f"c{mayor_contest.id}_{bob.id}": mayor[1],
        f"c{mayor_contest.id}_overvotes": mayor[2],
        f"c{mayor_contest.id}_undervotes": mayor[3],
        f"c{mayor_contest.id}_ballots_cast": 100,
        f"c{council_contest.id}_{cy.id}": council[0],
        f"c{council_contest.id}_{di.id}": council[1],
        f"c{council_contest.id}_{ed.id}": council[2],
        f"c{council_contest.id}_overvotes": council[3],
        f"c{council_contest.id}_undervotes": council[4],
        f"c{council_contest.id}_ballots_cast": 100,
    }
    return {k: str(v) for k, v in data.items()}


def url(made, precinct, suffix=""):
    return f"/elections/{made.election.id}/returns/{precinct.id}{suffix}"


def revisions(run, made):
    async def go():
        async with reading() as db:
            return list(
                (
                    await db.execute(
                        select(
                            PrecinctReturn.contest_id, PrecinctReturn.revision, PrecinctReturn.status
                        ).order_by(PrecinctReturn.contest_id, PrecinctReturn.revision)
                    )
                ).tuples()
            )

    return run(go())


def test_enter_saves_one_revision_per_contest_and_a_resend_stores_nothing(night, run):
    made, clerk, _ = night
    page = clerk.get(url(made, made.precincts[0])).text
    assert "Mayor" in page and "Council" in page and "vote for 2" in page
    assert clerk.post(url(made, made.precincts[0]), data=figures(made)).status_code == 303
    assert [r[1:] for r in revisions(run, made)] == [(1, "entered"), (1, "entered")]
    again = clerk.post(url(made, made.precincts[0]), data=figures(made))
    assert again.status_code == 303
    assert "nothing changed" in clerk.get(again.location).text
    assert len(revisions(run, made)) == 2  # double click / resend: one version
    clerk.post(url(made, made.precincts[0]), data=figures(made, mayor=(61, 34, 3, 2)))
    assert [r[1:] for r in revisions(run, made)] == [(1, "entered"), (2, "entered"), (1, "entered")]
    page = clerk.get(url(made, made.precincts[0])).text
    assert 'value="61"' in page and "revision 2 entered" in page and "Revision 1:" in page


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"mayor": (60, 36, 3, 2)},
            "Votes 96 + overvotes 3 + undervotes 2 = 101, but ballots cast × vote for 1 = 100.",
        ),
        ({"council": (50, 40, 90, 10, 11)}, "but ballots cast × vote for 2 = 200."),
    ],
)
def test_the_sum_rule_is_checked_per_contest(night, run, change, message):
    made, clerk, _ = night
    response = clerk.post(url(made, made.precincts[0]), data=figures(made, **change))
    assert response.status_code == 422 and message in response.text and "Nothing was saved" in response.text
    assert revisions(run, made) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "Enter a number (0 if none)."),
        ("-3", "Whole numbers only, 0 or more."),
        ("ten", "Not a number."),
        ("3.5", "Not a number."),
        ("99999999999", "Implausibly large."),
    ],
)
def test_bad_counts(night, run, value, message):
    made, clerk, _ = night
    data = figures(made)
    data[f"c{made.contests[0].id}_{made.candidates[0].id}"] = value
    response = clerk.post(url(made, made.precincts[0]), data=data)
    assert response.status_code == 422 and message in response.text
    assert revisions(run, made) == []


def test_checked_as_you_type(night):
    made, clerk, _ = night
    mayor = made.contests[0]
    data = {k: v for k, v in figures(made).items() if k.startswith(f"c{mayor.id}_")}
    good = clerk.post(url(made, made.precincts[0], f"/check/{mayor.id}"), data=data, headers=HX).text
    assert "✓" in good and "100 ballots × 1 = 100" in good and "<html" not in good
    data[f"c{mayor.id}_undervotes"] = "7"
    bad = clerk.post(url(made, made.precincts[0], f"/check/{mayor.id}"), data=data, headers=HX).text
    assert "≠" in bad and "= 105, but ballots cast × vote for 1 = 100" in bad


def test_more_ballots_than_check_ins_is_a_warning(night, create_voters, run):
    from portal.checkin.queries import record_check_in
    from portal.db import transaction

    made, clerk, _ = night
    [voter] = create_voters([("Lee", "Al")], precinct=made.precincts[0])

    async def check_in():
        async with transaction() as db:
            await record_check_in(
                db, actor=clerk.user, election_id=made.election.id, voter_id=voter, method="in_person"
            )

    run(check_in())
    response = clerk.post(url(made, made.precincts[0]), data=figures(made))
    assert response.status_code == 303
    page = clerk.get(url(made, made.precincts[0])).text
    assert "1 voters checked in" in page
    response = clerk.post(url(made, made.precincts[0]), data=figures(made, mayor=(61, 34, 3, 2)))
    assert response.status_code == 303  # a warning does not block: the mismatch is shown, not hidden


def test_only_open_or_closed_elections_take_returns(client_as, create_election):
    clerk = client_as("clerk")
    for status in ("draft", "certified"):
        made = create_election(status=status, precincts=1)
        response = clerk.get(url(made, made.precincts[0]))
        assert response.status_code == 409 and status in response.text
        assert clerk.post(url(made, made.precincts[0]), data={}).status_code == 409


def test_a_precinct_outside_the_election(night, create_precinct):
    made, clerk, _ = night
    outsider = create_precinct(code="OUT-9")
    assert clerk.get(url(made, outsider)).status_code == 404


def test_verification_needs_a_second_person(night, run):
    made, clerk, _ = night
    clerk.post(url(made, made.precincts[0]), data=figures(made))
    assert "You entered 2 of these returns" in clerk.get(url(made, made.precincts[0], "/verify")).text
    data = {**figures(made), "mode": "rekey", **{f"revision_{c.id}": "1" for c in made.contests}}
    response = clerk.post(url(made, made.precincts[0], "/verify"), data=data)
    assert response.status_code == 409 and "a second person must verify them" in response.text
    assert {r[2] for r in revisions(run, made)} == {"entered"}


def test_confirming_verifies_and_a_correction_needs_verifying_again(night, run):
    made, clerk, other = night
    clerk.post(url(made, made.precincts[0]), data=figures(made))
    confirm = {"mode": "confirm", **{f"revision_{c.id}": "1" for c in made.contests}}
    assert other.post(url(made, made.precincts[0], "/verify"), data=confirm).status_code == 303
    clerk.post(url(made, made.precincts[0]), data=figures(made, mayor=(62, 33, 3, 2)))
    states = revisions(run, made)
    assert (made.contests[0].id, 2, "entered") in states and (made.contests[0].id, 1, "verified") in states
    stale = other.post(url(made, made.precincts[0], "/verify"), data=confirm)  # still pointing at revision 1
    assert stale.status_code == 409 and "a newer revision was entered meanwhile" in stale.text


def test_certification_follows_verified_returns(night, client_as):
    made, clerk, other = night
    for precinct in made.precincts:
        clerk.post(url(made, precinct), data=figures(made))
        other.post(
            url(made, precinct, "/verify"),
            data={"mode": "confirm", **{f"revision_{c.id}": "1" for c in made.contests}},
        )
    manager = client_as("manager")
    assert move_election(manager, made.election.id, "closed").status_code == 200
    assert move_election(manager, made.election.id, "certified").status_code == 200
    assert clerk.post(url(made, made.precincts[0]), data=figures(made)).status_code == 409


def test_returns_are_audited(night, run):
    from portal.audit.queries import search_events

    made, clerk, other = night
    clerk.post(url(made, made.precincts[0]), data=figures(made))
    other.post(
        url(made, made.precincts[0], "/verify"),
        data={"mode": "confirm", **{f"revision_{c.id}": "1" for c in made.contests}},
    )

    async def events():
        async with reading() as db:
            return [e.action for e in await search_events(db, entity="precinct_return")]

    assert sorted(run(events())) == ["enter_return", "enter_return", "verify_return", "verify_return"]


def test_observers_see_the_precinct_list_not_the_forms(night, client_as):
    made, _, _ = night
    observer = client_as("observer")
    page = observer.get(f"/elections/{made.election.id}/returns")
    assert page.status_code == 200 and "Enter</a>" not in page.text
    assert observer.get(url(made, made.precincts[0])).status_code == 403


def test_ballots_with_no_check_in_at_all_are_warned_about_and_saved(night):
    """120 ballots against 0 check-ins is the largest excess of all: said as you type and on saving."""
    made, clerk, _ = night
    check = clerk.post(
        url(made, made.precincts[0], f"/check/{made.contests[0].id}"), data=figures(made), headers=HX
    )
    assert (
        "100 Election Day ballots cast but no Election Day voter has checked in at this precinct."
        in check.text
    )
    assert clerk.post(url(made, made.precincts[0]), data=figures(made)).status_code == 303
    page = clerk.get(url(made, made.precincts[0])).text
    assert "2 contest(s) saved for verification" in page
    assert page.count("but no Election Day voter has checked in at this precinct.") == 2
