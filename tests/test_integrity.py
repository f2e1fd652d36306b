"""Integrity under concurrency: a status move and the writes that depend on the status never
interleave, and one state change writes one audit event (never one for a change that did not
happen)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import func, select, text

from portal.db import reading, transaction
from portal.models import AuditEvent, CheckIn, Incident, PrecinctReturn
from tests.conftest import TEST_PASSWORD, LiveServer
from tests.faults import Client

WAIT = 0.5  # long enough for an unguarded write to have finished


async def _move(election_id: int, actor, to: str):
    from portal.elections.queries import move_election

    async with transaction() as db:
        return await move_election(db, actor=actor, election_id=election_id, to=to, seen_version=None)


async def _save_return(made, clerk, votes):
    from portal.returns.forms import Figures
    from portal.returns.queries import open_for_returns, precinct_ballot, save_return

    async with transaction() as db:
        await open_for_returns(db, made.election.id)
        [ballot] = await precinct_ballot(db, made.election.id, made.precincts[0].id)
        ann, bob = ballot.candidates
        figures = Figures({ann.id: votes[0], bob.id: votes[1]}, sum(votes), 0, 0)
        return await save_return(
            db,
            actor=clerk,
            election_id=made.election.id,
            precinct_id=made.precincts[0].id,
            ballot=ballot,
            figures=figures,
        )


async def _verify(made, verifier):
    from portal.returns.queries import precinct_ballot
    from portal.returns.verification import verify_return

    async with transaction() as db:
        [ballot] = await precinct_ballot(db, made.election.id, made.precincts[0].id)
        return await verify_return(db, actor=verifier, ballot=ballot, revision=ballot.latest.revision)


async def _count(model, **where):
    async with reading() as db:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return await db.scalar(query)


@pytest.fixture
def counted(create_election, create_user, run):
    """A closed election whose one precinct has a verified return: ready to certify."""
    made = create_election(status="closed", precincts=1, contests=[("Mayor", 1, ["Ann Able", "Bob Baker"])])
    clerk, verifier, manager = create_user("clerk"), create_user("clerk"), create_user("manager")
    run(_save_return(made, clerk, (60, 40)))
    run(_verify(made, verifier))
    return made, clerk, verifier, manager


def test_certify_waits_for_a_return_being_saved_and_then_refuses(counted, run):
    from portal.elections.queries import LifecycleRefused

    made, clerk, _, manager = counted

    async def race():
        async with transaction() as db:  # a clerk's save, under way
            from portal.returns.forms import Figures
            from portal.returns.queries import open_for_returns, precinct_ballot, save_return

            await open_for_returns(db, made.election.id)
            certify = asyncio.create_task(_move(made.election.id, manager, "certified"))
            await asyncio.sleep(WAIT)
            assert not certify.done(), "certifying did not wait for the return being saved"
            [ballot] = await precinct_ballot(db, made.election.id, made.precincts[0].id)
            ann, bob = ballot.candidates
            await save_return(
                db,
                actor=clerk,
                election_id=made.election.id,
                precinct_id=made.precincts[0].id,
                ballot=ballot,
                figures=Figures({ann.id: 61, bob.id: 39}, 100, 0, 0),
            )
        with pytest.raises(LifecycleRefused, match="no verified returns"):
            await certify

    run(race())
    assert run(_count(PrecinctReturn, status="entered")) == 1  # revision 2, waiting for its check


def test_a_return_saved_during_certification_waits_and_is_refused(counted, run):
    from portal.returns.queries import ReturnsClosed

    made, clerk, _, manager = counted

    async def race():
        from portal.elections.queries import move_election

        async with transaction() as db:  # certification under way
            await move_election(
                db, actor=manager, election_id=made.election.id, to="certified", seen_version=None
            )
            save = asyncio.create_task(_save_return(made, clerk, (61, 39)))
            await asyncio.sleep(WAIT)
            assert not save.done(), "a return was saved while the election was being certified"
        with pytest.raises(ReturnsClosed, match="certified"):
            await save

    run(race())
    assert run(_count(PrecinctReturn)) == 1  # the certified record is all there is


def test_an_incident_reported_during_certification_waits_and_is_refused(counted, run):
    from portal.errors import Conflict
    from portal.incidents.queries import report_incident

    made, clerk, _, manager = counted

    async def report():
        async with transaction() as db:
            return await report_incident(
                db, actor=clerk, election_id=made.election.id, precinct_id=None, state_voter_id=None, body="x"
            )

    async def race():
        from portal.elections.queries import move_election

        async with transaction() as db:
            await move_election(
                db, actor=manager, election_id=made.election.id, to="certified", seen_version=None
            )
            reported = asyncio.create_task(report())
            await asyncio.sleep(WAIT)
            assert not reported.done()
        with pytest.raises(Conflict, match="certified"):
            await reported

    run(race())
    assert run(_count(Incident)) == 0


def test_closing_waits_for_a_check_in_under_way(create_election, create_user, create_voters, run):
    """Check-in is the write that depends on "open": closing the polls must not slip in between
    its check of the status and its insert (certifying needs a closed election already)."""
    from portal.checkin.queries import get_open_election, record_check_in

    made = create_election(status="open", precincts=1)
    [voter_id] = create_voters([("Smith", "Ann")], precinct=made.precincts[0])
    clerk, manager = create_user("clerk"), create_user("manager")

    async def race():
        async with transaction() as db:
            await get_open_election(db, made.election.id)  # the check-in has looked: open
            closing = asyncio.create_task(_move(made.election.id, manager, "closed"))
            await asyncio.sleep(WAIT)
            assert not closing.done(), "the polls closed while a check-in was being recorded"
            await record_check_in(
                db, actor=clerk, election_id=made.election.id, voter_id=voter_id, method="in_person"
            )
        closed = await closing
        assert closed.status == "closed"

    run(race())
    assert run(_count(CheckIn)) == 1


def test_twenty_simultaneous_verifications_write_one_audit_event(
    app_factory, create_election, create_user, run
):
    """The outside review's case: a saved return, then 20 parallel confirmations from three users.
    One verifies; the others are told who did; the audit log holds one event per state change."""
    made = create_election(status="open", precincts=1, contests=[("Mayor", 1, ["Ann Able", "Bob Baker"])])
    clerk = create_user("clerk")
    run(_save_return(made, clerk, (60, 40)))
    # CSRF on, as a browser sends it (cookies without Secure: this client speaks plain http).
    live_server = LiveServer(app_factory(WTF_CSRF_ENABLED=True, SESSION_COOKIE_SECURE=False)).__enter__()
    verifiers = []
    for role in ("admin", "manager", "clerk"):
        user = create_user(role)
        client = Client(live_server.url)
        client.sign_in(user.username, TEST_PASSWORD)
        verifiers.append(client)
    contest = made.contests[0]
    path = f"/elections/{made.election.id}/returns/{made.precincts[0].id}/verify"
    answers, lock, go = [], threading.Lock(), threading.Event()

    def confirm(client):
        go.wait()
        status, body = client.request(
            path, {"mode": "confirm", f"revision_{contest.id}": "1", "csrf_token": client.token}
        )
        with lock:
            answers.append((status, body))

    threads = [threading.Thread(target=confirm, args=(verifiers[n % 3],)) for n in range(20)]
    for thread in threads:
        thread.start()
    go.set()
    for thread in threads:
        thread.join(60)
    live_server.__exit__(None, None, None)

    assert len(answers) == 20
    succeeded = [body for status, body in answers if status == 200 and "verified" in body]
    refused = [body for status, body in answers if status == 409]
    assert len(succeeded) == 1, [s for s, _ in answers]
    assert len(refused) == 19
    assert all("already verified by" in body for body in refused)
    assert run(_count(AuditEvent, action="verify_return")) == 1
    assert run(_count(PrecinctReturn, status="verified")) == 1


def test_resolving_an_incident_twice_records_it_once(create_election, create_user, run):
    from portal.errors import Conflict
    from portal.incidents.queries import report_incident, resolve_incident

    made = create_election(status="open", precincts=1)
    clerk, first, second = create_user("clerk"), create_user("manager"), create_user("admin")

    async def go():
        async with transaction() as db:
            incident = await report_incident(
                db, actor=clerk, election_id=made.election.id, precinct_id=None, state_voter_id=None, body="x"
            )
        async with transaction() as db:
            await resolve_incident(db, actor=first, election_id=made.election.id, incident_id=incident.id)
        with pytest.raises(Conflict, match="already resolved by"):
            async with transaction() as db:
                await resolve_incident(
                    db, actor=second, election_id=made.election.id, incident_id=incident.id
                )

    run(go())
    assert run(_count(AuditEvent, action="resolve")) == 1


def test_status_reads_are_not_served_from_the_session_cache(counted, run):
    """The guard reads the row afresh under its lock, even when the session already holds it."""
    from portal.elections.lifecycle import lock_election
    from portal.models import Election

    made, *_ = counted

    async def go():
        async with transaction() as db:
            cached = await db.get(Election, made.election.id)
            assert cached.status == "closed"
            async with transaction() as other:
                await other.execute(
                    text("UPDATE election SET status = 'certified' WHERE id = :id"), {"id": made.election.id}
                )
            fresh = await lock_election(db, made.election.id)
            return fresh.status

    assert run(go()) == "certified"


def test_a_verifier_who_comes_second_is_told_who_verified(create_election, create_user, client_as, run):
    made = create_election(status="open", precincts=1, contests=[("Mayor", 1, ["Ann Able", "Bob Baker"])])
    clerk, first = create_user("clerk"), create_user("clerk", display_name="First Verifier")
    run(_save_return(made, clerk, (60, 40)))
    run(_verify(made, first))
    response = client_as("manager").post(
        f"/elections/{made.election.id}/returns/{made.precincts[0].id}/verify",
        data={"mode": "confirm", f"revision_{made.contests[0].id}": "1"},
    )
    assert response.status_code == 409 and "already verified by First Verifier at" in response.text
    assert run(_count(AuditEvent, action="verify_return")) == 1
