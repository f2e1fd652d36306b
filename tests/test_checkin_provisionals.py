"""Provisional ballots: pending until a manager accepts or rejects them with a reason from the
configured list; each decision audited once; turnout counts them apart; certification waits."""

from __future__ import annotations

import asyncio
import re

import pytest

from portal.db import transaction
from tests.conftest import move_election
from tests.desk import Desk, check_ins, events, sql

REASONS = ["Registration confirmed", "Not on the roll", "Wrong precinct"]


@pytest.fixture
def night(app_factory, create_election, create_voters, create_user, create_precinct):
    """An open election over two precincts: two voters with a provisional ballot in the first, one in
    the second, one ordinary check-in; an app with CSRF on and three reasons configured."""
    made = create_election(status="open", precincts=2)
    first, second = made.precincts
    ann, bea, joe = create_voters([("Inact", "Ann"), ("Inact", "Bea"), ("Reg", "Joe")], precinct=first)
    [cal] = create_voters([("Other", "Cal")], precinct=second, status="inactive")
    app = app_factory(WTF_CSRF_ENABLED=True, PROVISIONAL_REASONS=REASONS)
    clerk = Desk(app, create_user("clerk"))
    for voter in (ann, bea, cal):
        assert clerk.check_in(made.election.id, voter, "provisional").status_code == 200
    assert clerk.check_in(made.election.id, joe, "in_person").status_code == 200
    ids = {c.voter_id: c.id for c in check_ins(run_of(app), made.election.id)}
    return made, app, clerk, {"ann": ids[ann], "bea": ids[bea], "cal": ids[cal], "joe": ids[joe]}, create_user


def run_of(app):
    from portal import aio

    def call(coro):
        with app.app_context():
            return aio.run(coro)

    return call


def decide(desk, election_id, ids, decision="accept", reason=REASONS[0], htmx=True, **extra):
    data = {"check_in": [str(i) for i in ids], "decision": decision, "reason": reason, **extra}
    return desk.post(f"/elections/{election_id}/provisionals/decide", data, htmx=htmx)


def statuses(run, election_id):
    return {c.id: c.provisional_status for c in check_ins(run, election_id)}


def test_a_provisional_ballot_is_pending_and_counted_apart(night, run):
    made, _, clerk, ids, _ = night
    assert statuses(run, made.election.id) == {
        ids["ann"]: "pending",
        ids["bea"]: "pending",
        ids["cal"]: "pending",
        ids["joe"]: None,
    }
    page = clerk.get(f"/elections/{made.election.id}").text
    # 4 of the 3 active voters on the roll of the two precincts (Cal is inactive; Ann and Bea active)
    assert re.search(r"Turnout <strong[^>]*>4</strong> of 3", page)
    assert re.search(r"provisional: <span[^>]*>0</span> accepted, <span[^>]*>3</span> pending", page)


def test_a_manager_accepts_and_rejects_in_bulk_each_audited(night, run):
    made, app, clerk, ids, create_user = night
    manager = Desk(app, create_user("manager"))
    page = manager.get(f"/elections/{made.election.id}/provisionals")
    assert page.status_code == 200 and "3 pending" in page.text
    assert all(f'value="{ids[n]}"' in page.text for n in ("ann", "bea", "cal"))
    assert f'value="{ids["joe"]}"' not in page.text  # not a provisional ballot
    assert all(reason in page.text for reason in REASONS)

    answer = decide(manager, made.election.id, [ids["ann"], ids["bea"]], "accept", "Registration confirmed")
    assert answer.status_code == 200 and answer.text.lstrip().startswith('<div id="provisional-list"')
    assert "2 provisional ballots accepted (Registration confirmed)" in answer.text
    answer = decide(manager, made.election.id, [ids["cal"]], "reject", "Wrong precinct")
    assert answer.status_code == 200 and "No provisional ballot is pending" in answer.text
    assert statuses(run, made.election.id)[ids["cal"]] == "rejected"
    [row] = [c for c in check_ins(run, made.election.id) if c.id == ids["cal"]]
    assert row.decided_by_id == manager.user.id and row.decision_reason == "Wrong precinct"

    accepted, rejected = events(run, "provisional_accepted"), events(run, "provisional_rejected")
    assert len(accepted) == 2 and len(rejected) == 1
    assert rejected[0].after == {
        "provisional_status": "rejected",
        "reason": "Wrong precinct",
        "precinct_id": made.precincts[1].id,
    }

    # A rejected provisional ballot was issued but is not counted: out of turnout, shown beside it.
    page = clerk.get(f"/elections/{made.election.id}").text
    assert re.search(r"Turnout <strong[^>]*>3</strong> of 3", page)
    assert re.search(
        r"<span[^>]*>2</span> accepted, <span[^>]*>0</span> pending, <span[^>]*>1</span> rejected", page
    )
    desk = clerk.check_in(made.election.id, create_voter_in(run, made, 0))
    assert "provisional:" in desk.text and "2</span> accepted" in desk.text

    listed = manager.get(f"/elections/{made.election.id}/provisionals?status=rejected").text
    assert "Other, Cal" in listed and "Inact, Ann" not in listed
    by_reason = manager.get(
        f"/elections/{made.election.id}/provisionals?status=all&reason=Wrong+precinct"
    ).text
    assert "Other, Cal" in by_reason and "Inact, Ann" not in by_reason
    by_precinct = manager.get(
        f"/elections/{made.election.id}/provisionals?status=all&precinct={made.precincts[0].id}", htmx=True
    ).text
    assert "Inact, Ann" in by_precinct and "Other, Cal" not in by_precinct
    assert by_precinct.lstrip().startswith('<div id="provisional-list"')


def create_voter_in(run, made, n):
    """A further active voter in the election's n-th precinct, straight into the roll."""
    return sql(
        run,
        "INSERT INTO voter (state_voter_id, first_name, last_name, date_of_birth, birth_year, address,"
        " precinct_id, registration_date) VALUES ('X0001', 'Ed', 'Extra', '1980-01-01', 1980, '1 Main',"
        " :p, '2020-01-01') RETURNING id",
        p=made.precincts[n].id,
    )[0][0]


def test_a_reason_not_in_the_list_is_refused(night, run):
    made, app, _, ids, create_user = night
    manager = Desk(app, create_user("manager"))
    for reason in ("Felt like it", "", "<script>x</script>", "registration confirmed"):
        answer = decide(manager, made.election.id, [ids["ann"]], "accept", reason)
        assert answer.status_code == 409 and "Nothing was changed" in answer.text
    answer = decide(manager, made.election.id, [ids["ann"]], "approve", REASONS[0])
    assert answer.status_code == 409
    assert statuses(run, made.election.id)[ids["ann"]] == "pending"
    assert not events(run, "provisional_accepted", "provisional_rejected")


def test_deciding_a_check_in_that_is_not_provisional_is_refused_409(night, run):
    made, app, _, ids, create_user = night
    manager = Desk(app, create_user("manager"))
    answer = decide(manager, made.election.id, [ids["ann"], ids["joe"]], "reject", "Not on the roll")
    assert answer.status_code == 409
    assert "Only provisional ballots are accepted or rejected, not Joe Reg (in person)" in answer.text
    assert statuses(run, made.election.id)[ids["ann"]] == "pending"  # nothing stored, not even Ann's
    assert statuses(run, made.election.id)[ids["joe"]] is None
    assert not events(run, "provisional_accepted", "provisional_rejected")


def test_deciding_twice_changes_and_audits_nothing(night, run):
    made, app, _, ids, create_user = night
    first, second = Desk(app, create_user("manager")), Desk(app, create_user("admin"))
    assert decide(first, made.election.id, [ids["ann"]], "accept").status_code == 200
    answer = decide(second, made.election.id, [ids["ann"]], "reject", "Not on the roll")
    assert answer.status_code == 409
    assert f"already accepted by {first.user.display_name}" in answer.text
    # Mixed: Bea is decided, Ann is left alone and named.
    answer = decide(second, made.election.id, [ids["ann"], ids["bea"]], "reject", "Not on the roll")
    assert answer.status_code == 200 and "1 provisional ballot rejected" in answer.text
    assert "Left as they were" in answer.text and "Ann Inact: already accepted" in answer.text
    assert statuses(run, made.election.id)[ids["ann"]] == "accepted"
    assert len(events(run, "provisional_accepted")) == 1 and len(events(run, "provisional_rejected")) == 1


def test_two_managers_at_once_decide_it_once(night, run):
    from portal.checkin.provisionals import decide_provisionals

    made, _, _, ids, create_user = night
    managers = [create_user("manager"), create_user("manager")]

    async def attempt(actor, decision):
        async with transaction() as db:
            return await decide_provisionals(
                db,
                actor=actor,
                election_id=made.election.id,
                check_in_ids=[ids["ann"], ids["bea"]],
                decision=decision,
                reason=REASONS[1],
                reasons=REASONS,
            )

    async def both():
        return await asyncio.gather(attempt(managers[0], "accept"), attempt(managers[1], "reject"))

    outcomes = run(both())
    assert sorted(o.decided for o in outcomes) == [0, 2]
    assert len(events(run, "provisional_accepted", "provisional_rejected")) == 2
    assert len({statuses(run, made.election.id)[ids[n]] for n in ("ann", "bea")}) == 1


def test_only_managers_and_admins_adjudicate(night, run):
    made, app, clerk, ids, create_user = night
    observer = Desk(app, create_user("observer"))
    for who in (clerk, observer):
        assert who.get(f"/elections/{made.election.id}/provisionals").status_code == 403
        assert decide(who, made.election.id, [ids["ann"]]).status_code == 403
    assert statuses(run, made.election.id)[ids["ann"]] == "pending"


def test_a_decision_without_the_csrf_token_is_refused(night, run):
    made, app, _, ids, create_user = night
    manager = Desk(app, create_user("manager"))
    data = {"check_in": [str(ids["ann"])], "decision": "accept", "reason": REASONS[0]}
    answer = manager.post(f"/elections/{made.election.id}/provisionals/decide", data, token=False)
    assert answer.status_code == 400 and statuses(run, made.election.id)[ids["ann"]] == "pending"


def test_certification_waits_for_pending_provisionals(night, run):
    made, app, _, ids, create_user = night
    manager = Desk(app, create_user("manager"))
    assert (
        move_election(manager.client, made.election.id, "closed", csrf_token=manager.token).status_code == 200
    )
    form = manager.get(f"/elections/{made.election.id}/status", htmx=True).text
    assert "3 provisional ballots are still pending" in form and "/provisionals" in form
    answer = move_election(manager.client, made.election.id, "certified", csrf_token=manager.token)
    assert answer.status_code == 409
    first, second = (p.code for p in made.precincts)
    assert f"3 provisional ballots are still pending in precincts {first}, {second}" in answer.text
    assert f"{first}: 2 pending" in answer.text and f"{second}: 1 pending" in answer.text
    assert sql(run, "SELECT status FROM election")[0][0] == "closed"
    assert not [e for e in events(run, "status") if e.after == {"status": "certified"}]
    assert not sql(run, "SELECT 1 FROM certified_result")
    # Closed, the ballots can still be decided; then certification moves on to the returns.
    assert decide(manager, made.election.id, [ids["ann"], ids["bea"], ids["cal"]]).status_code == 200
    answer = move_election(manager.client, made.election.id, "certified", csrf_token=manager.token)
    assert "provisional" not in answer.text and "no verified returns" in answer.text


def test_adjudication_is_refused_once_certified(night, run):
    made, app, _, ids, create_user = night
    manager = Desk(app, create_user("manager"))
    sql(run, "UPDATE election SET status = 'certified'")
    answer = decide(manager, made.election.id, [ids["ann"]])
    assert answer.status_code == 409 and "certified" in answer.text
    page = manager.get(f"/elections/{made.election.id}/provisionals").text
    assert 'name="check_in"' not in page and "can no longer be decided" in page
    assert statuses(run, made.election.id)[ids["ann"]] == "pending"
    assert not events(run, "provisional_accepted")


def test_a_voided_provisional_is_neither_pending_nor_decided(night, run):
    made, app, _, ids, create_user = night
    manager = Desk(app, create_user("manager"))
    ann = next(c.voter_id for c in check_ins(run, made.election.id) if c.id == ids["ann"])
    assert manager.void(made.election.id, ann, reason="Issued to the wrong person").status_code == 200
    page = manager.get(f"/elections/{made.election.id}/provisionals").text
    assert "2 pending" in page and "Inact, Ann" not in page
    answer = decide(manager, made.election.id, [ids["ann"]])
    assert answer.status_code == 409 and "Ann Inact: the check-in was voided" in answer.text
