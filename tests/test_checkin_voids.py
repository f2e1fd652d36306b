"""Voiding a mistaken check-in: with a reason, by its clerk within the window or by a manager,
while the election is open; audited; the voter can be checked in again; every count leaves it out."""

from __future__ import annotations

import re

import pytest

from tests.conftest import move_election
from tests.desk import Desk, check_ins, events, sql


@pytest.fixture
def night(app_factory, create_election, create_voters, create_user):
    """An open election with two voters in its one precinct; an app with CSRF on and a 15-minute window."""
    made = create_election(status="open", precincts=1)
    voters = create_voters([("Smith", "John"), ("Smith", "Jane")], precinct=made.precincts[0])
    app = app_factory(WTF_CSRF_ENABLED=True, CHECK_IN_VOID_MINUTES=15)

    def desk(role="clerk"):
        return Desk(app, create_user(role))

    return made, voters, desk, app


def test_the_clerk_voids_their_check_in_and_the_voter_is_checked_in_again(night, run):
    made, (john, _), desk, _ = night
    clerk = desk()
    election = made.election.id
    assert clerk.check_in(election, john).status_code == 200
    desk_page = clerk.get(f"/check-in?election={election}&q=smith+john").text
    assert f"/check-in/{election}/voters/{john}/void" in desk_page  # the desk offers the void
    form = clerk.get(f"/check-in/{election}/voters/{john}/void", htmx=True)
    assert form.status_code == 200 and 'class="modal-header"' in form.text and "John Smith" in form.text

    answer = clerk.void(election, john, reason="<b>Wrong</b> John: same name & street")
    assert answer.status_code == 200
    assert "checkInsChanged" in answer.headers["HX-Trigger"] and "closeModal" in answer.headers["HX-Trigger"]
    assert 'id="turnout" hx-swap-oob="true"' in answer.text and "0 of 2 · 0.00%" in answer.text
    [row] = check_ins(run, election)
    assert row.voided_by_id == clerk.user.id and row.voided_at is not None
    assert row.void_reason == "<b>Wrong</b> John: same name & street"  # stored as typed, shown as text
    [event] = events(run, "check_in_void")
    assert event.entity_id == str(john) and event.after["reason"] == row.void_reason
    assert event.before["method"] == "in_person"

    page = clerk.get(f"/voters/{john}").text
    voided = re.search(r'<tr class="check-in-voided">(.*?)</tr>', page, re.S).group(1)
    assert "<del" in voided and made.election.name in voided
    assert f"by {clerk.user.display_name}" in voided
    assert "&lt;b&gt;Wrong&lt;/b&gt; John: same name &amp; street" in voided and "<b>Wrong" not in page

    again = clerk.check_in(election, john, "early")
    assert again.status_code == 200 and "1 of 2 · 50.00%" in again.text
    first, second = check_ins(run, election)
    assert first.voided_at is not None and second.voided_at is None and second.method == "early"
    assert len(events(run, "check_in")) == 2


def test_voiding_twice_is_refused_and_stores_nothing(night, run):
    made, (john, _), desk, _ = night
    clerk, manager = desk(), desk("manager")
    clerk.check_in(made.election.id, john)
    assert clerk.void(made.election.id, john, reason="Wrong voter").status_code == 200
    [before] = check_ins(run, made.election.id)
    url = f"/check-in/{made.election.id}/voters/{john}/void"
    again = manager.post(url, {"reason": "Once more"})
    assert again.status_code == 409
    assert f"already voided by {clerk.user.display_name}" in again.text and "Wrong voter" in again.text
    page = manager.get(url)  # the form itself says so too
    assert page.status_code == 409 and "already voided" in page.text
    [after] = check_ins(run, made.election.id)
    assert (after.voided_at, after.voided_by_id, after.void_reason) == (
        before.voided_at,
        before.voided_by_id,
        before.void_reason,
    )
    assert len(events(run, "check_in_void")) == 1


def test_a_clerk_cannot_void_after_the_window_but_a_manager_can(night, run):
    made, (john, _), desk, _ = night
    clerk = desk()
    clerk.check_in(made.election.id, john)
    sql(run, "UPDATE check_in SET checked_in_at = now() - interval '16 minutes'")
    assert f"voters/{john}/void" not in clerk.get(f"/check-in?election={made.election.id}&q=smith+john").text
    late = clerk.post(f"/check-in/{made.election.id}/voters/{john}/void", {"reason": "Wrong voter"})
    assert late.status_code == 409 and "within 15 minutes" in late.text and "Ask a manager" in late.text
    assert check_ins(run, made.election.id)[0].voided_at is None and not events(run, "check_in_void")
    manager = desk("manager")
    assert manager.void(made.election.id, john).status_code == 200
    assert check_ins(run, made.election.id)[0].voided_by_id == manager.user.id


def test_the_window_comes_from_the_configuration(
    app_factory, create_election, create_voters, create_user, run
):
    made = create_election(status="open", precincts=1)
    [john] = create_voters([("Smith", "John")], precinct=made.precincts[0])
    clerk = Desk(app_factory(WTF_CSRF_ENABLED=True, CHECK_IN_VOID_MINUTES=60), create_user("clerk"))
    clerk.check_in(made.election.id, john)
    sql(run, "UPDATE check_in SET checked_in_at = now() - interval '30 minutes'")
    assert clerk.void(made.election.id, john).status_code == 200


def test_another_clerk_cannot_void_it(night, run):
    made, (john, _), desk, _ = night
    first, other = desk(), desk()
    first.check_in(made.election.id, john)
    answer = other.void(made.election.id, john)
    assert answer.status_code == 403
    assert (
        f"made by {first.user.display_name}" in answer.text and "a clerk voids only their own" in answer.text
    )
    assert check_ins(run, made.election.id)[0].voided_at is None and not events(run, "check_in_void")


def test_an_observer_cannot_void(night, run):
    made, (john, _), desk, _ = night
    desk().check_in(made.election.id, john)
    answer = desk("observer").post(f"/check-in/{made.election.id}/voters/{john}/void", {"reason": "x"})
    assert answer.status_code == 403 and check_ins(run, made.election.id)[0].voided_at is None


@pytest.mark.parametrize("status", ["closed", "certified"])
def test_voiding_is_refused_once_the_election_is_closed(night, run, status):
    made, (john, _), desk, _ = night
    clerk, manager = desk(), desk("manager")
    clerk.check_in(made.election.id, john)
    if status == "closed":
        closed = move_election(manager.client, made.election.id, "closed", csrf_token=manager.token)
        assert closed.status_code == 200
    else:
        sql(run, "UPDATE election SET status = 'certified'")
    for who in (clerk, manager):
        answer = who.post(f"/check-in/{made.election.id}/voters/{john}/void", {"reason": "Wrong voter"})
        assert (
            answer.status_code == 409
            and f"is {status}" in answer.text
            and "only while it is open" in answer.text
        )
    assert check_ins(run, made.election.id)[0].voided_at is None and not events(run, "check_in_void")


@pytest.mark.parametrize(
    ("reason", "message"),
    [("", "Say why"), ("   \t ", "Say why"), ("x" * 301, "within 300 characters")],
)
def test_the_reason_is_required_and_limited(night, run, reason, message):
    made, (john, _), desk, _ = night
    clerk = desk()
    clerk.check_in(made.election.id, john)
    answer = clerk.void(made.election.id, john, reason=reason)
    assert answer.status_code == 422 and message in answer.text and 'name="reason"' in answer.text
    assert check_ins(run, made.election.id)[0].voided_at is None and not events(run, "check_in_void")


def test_a_void_without_the_csrf_token_is_refused(night, run):
    made, (john, _), desk, _ = night
    clerk = desk()
    clerk.check_in(made.election.id, john)
    answer = clerk.post(f"/check-in/{made.election.id}/voters/{john}/void", {"reason": "x"}, token=False)
    assert answer.status_code == 400 and check_ins(run, made.election.id)[0].voided_at is None


def test_a_void_without_htmx_goes_to_the_voter_page(night, run):
    made, (john, _), desk, _ = night
    clerk = desk()
    clerk.check_in(made.election.id, john)
    page = clerk.get(f"/check-in/{made.election.id}/voters/{john}/void")
    assert page.status_code == 200 and "<h1" in page.text and "Void check-in" in page.text
    answer = clerk.void(made.election.id, john, htmx=False)
    assert answer.status_code == 303 and answer.location.endswith(f"/voters/{john}")


def test_every_count_leaves_voided_check_ins_out(night, run):
    from portal.reports.queries import collect_record
    from portal.returns.queries import check_ins_at
    from portal.tally.queries import election_turnout

    made, (john, jane), desk, _ = night
    clerk = desk()
    for voter in (john, jane):
        clerk.check_in(made.election.id, voter)
    clerk.void(made.election.id, john)
    precinct = made.precincts[0].id

    async def counts():
        from portal.db import reading

        async with reading() as db:
            turnout = await election_turnout(db, made.election.id)
            record = await collect_record(db, made.election.id)
            return turnout, await check_ins_at(db, made.election.id, precinct), record["check_ins"]

    turnout, at_precinct, in_record = run(counts())
    assert (turnout.checked_in, turnout.counts.issued, turnout.registered) == (1, 1, 2)
    assert at_precinct == 1
    assert [list(row) for row in in_record] == [[precinct, "in_person", 1]]
    election_page = clerk.get(f"/elections/{made.election.id}").text
    assert re.search(
        r"Turnout <strong[^>]*>1</strong> of 2 <span[^>]*>active voters[^<]*</span> · 50.00%", election_page
    )
    dashboard = clerk.get("/").text
    assert re.search(
        r"Turnout <strong[^>]*>1</strong> of 2 <span[^>]*>active voters[^<]*</span> · 50.00%", dashboard
    )
