"""Live panels over Server-Sent Events, fanned out by PostgreSQL LISTEN/NOTIFY."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from portal.live.hub import sse_message
from tests.conftest import TEST_PASSWORD, LiveServer
from tests.sse import EventStream, flask_server, sign_in_cookie

ROOT = Path(__file__).resolve().parent.parent


def test_multi_line_html_is_sent_line_by_line():
    message = sse_message("contest-5", "<div>\n  <b>Ann</b>\n</div>", 7).decode()
    assert message == "event: contest-5\nid: 7\ndata: <div>\ndata:   <b>Ann</b>\ndata: </div>\n\n"


def enter_return(run, made, user, precinct, votes):
    from portal.db import transaction
    from portal.returns.forms import Figures
    from portal.returns.queries import precinct_ballot, save_return

    async def go():
        async with transaction() as db:
            [ballot] = await precinct_ballot(db, made.election.id, precinct.id)
            ann, bob = ballot.candidates
            figures = Figures({ann.id: votes[0], bob.id: votes[1]}, sum(votes), 0, 0)
            await save_return(
                db,
                actor=user,
                election_id=made.election.id,
                precinct_id=precinct.id,
                ballot=ballot,
                figures=figures,
            )

    run(go())


@pytest.fixture
def watched(app_factory, create_election, create_user):
    made = create_election(status="open", precincts=2, contests=[("Mayor", 1, ["Ann Able", "Bob Baker"])])
    observer, clerk = create_user("observer"), create_user("clerk")
    app = app_factory(SESSION_COOKIE_SECURE=False, LIVE_HEARTBEAT_SECONDS=0.2, LIVE_CHANGE_WINDOW_MS=100)
    with LiveServer(app) as server:
        yield made, server, sign_in_cookie(server.url, observer.username, TEST_PASSWORD), clerk, app


def test_a_subscriber_gets_the_current_state_then_every_change(watched, run):
    made, server, cookie, clerk, _ = watched
    contest = made.contests[0]
    stream = EventStream(server.url, f"/live/elections/{made.election.id}/stream", cookie)
    try:
        assert stream.response.status == 200
        assert stream.response.getheader("Content-Type").startswith("text/event-stream")
        first = stream.wait_for(f"contest-{contest.id}")
        assert "Ann Able" in first["data"] and "Unofficial" in first["data"]
        stream.wait_for("turnout")
        stream.wait_for("reporting", "0</strong> of 2")
        enter_return(run, made, clerk, made.precincts[0], (70, 30))
        update = stream.wait_for(f"contest-{contest.id}", "70 · 70.00%")
        assert int(update["id"]) > int(first["id"])
        stream.wait_for("reporting", "1</strong> of 2")
    finally:
        stream.close()


def test_a_burst_of_changes_is_rendered_once(watched, run):
    from portal import aio
    from portal.db import transaction
    from portal.live.hub import announce, hub_for

    made, server, cookie, _, app = watched
    stream = EventStream(server.url, f"/live/elections/{made.election.id}/stream", cookie)
    try:
        stream.wait_for("reporting")
        hub = aio.run(hub_for(app))
        before = hub.renders

        async def burst():
            for _ in range(25):
                async with transaction() as db:
                    await announce(db, made.election.id, "turnout")

        run(burst())
        stream.wait_for("turnout")
        time.sleep(0.4)
        assert hub.renders - before <= 2  # 25 changes, one window (two if the burst straddles it)
    finally:
        stream.close()


def test_a_lone_change_renders_at_once_and_a_burst_renders_twice(
    app_factory, create_election, create_user, run
):
    """Leading edge: with a 3 s change window, a lone change still arrives at once (it does not wait
    for the window); a burst of 100 changes renders the panel twice: the first change at once, the
    other 99 together when the window after that render ends."""
    from portal import aio
    from portal.db import transaction
    from portal.live.hub import announce, hub_for

    made = create_election(status="open", precincts=1, contests=[("Mayor", 1, ["Ann Able", "Bob Baker"])])
    observer = create_user("observer")
    app = app_factory(SESSION_COOKIE_SECURE=False, LIVE_HEARTBEAT_SECONDS=0.2, LIVE_CHANGE_WINDOW_MS=3000)

    async def changes(count: int):
        for _ in range(count):
            async with transaction() as db:
                await announce(db, made.election.id, "turnout")

    with LiveServer(app) as server:
        stream = EventStream(
            server.url,
            f"/live/elections/{made.election.id}/stream",
            sign_in_cookie(server.url, observer.username, TEST_PASSWORD),
        )
        try:
            stream.wait_for("reporting")
            hub = aio.run(hub_for(app))
            before = hub.renders
            run(changes(1))
            stream.wait_for("turnout", timeout=2)  # long before the 3 s window would have ended
            assert hub.renders - before == 1
            time.sleep(3.2)  # the window after that render passes: the next change is lone again
            before = hub.renders
            run(changes(100))
            stream.wait_for("turnout", timeout=2)  # the first of the burst, at once
            stream.wait_for("turnout", timeout=6)  # the other 99, together, after the window
            time.sleep(0.5)
            assert hub.renders - before == 2
        finally:
            stream.close()


def test_a_closed_connection_frees_its_subscriber_at_once(app_factory, create_election, create_user):
    """No write is needed to notice: the stream looks at its socket every second."""
    from portal import aio
    from portal.live.hub import hub_for

    made = create_election(status="open", precincts=1)
    user = create_user("observer")
    app = app_factory(SESSION_COOKIE_SECURE=False, LIVE_HEARTBEAT_SECONDS=60)
    with LiveServer(app) as server:
        cookie = sign_in_cookie(server.url, user.username, TEST_PASSWORD)
        stream = EventStream(server.url, f"/live/elections/{made.election.id}/stream", cookie)
        stream.wait_for("reporting")
        hub = aio.run(hub_for(app))
        assert hub.count() == 1
        stream.close()
        deadline = time.monotonic() + 3
        while hub.count() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hub.count() == 0


def test_many_closed_connections_free_their_subscribers(watched):
    from portal import aio
    from portal.live.hub import hub_for

    made, server, cookie, _, app = watched
    hub = aio.run(hub_for(app))
    streams = [
        EventStream(server.url, f"/live/elections/{made.election.id}/stream", cookie) for _ in range(3)
    ]
    for stream in streams:
        stream.wait_for("reporting")
    assert hub.count() == 3
    for stream in streams:
        stream.close()
    deadline = time.monotonic() + 5
    while hub.count() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hub.count() == 0


def test_over_the_limit_a_client_is_told_and_retries_later(app_factory, create_election, create_user):
    made = create_election(status="open", precincts=1)
    user = create_user("observer")
    app = app_factory(SESSION_COOKIE_SECURE=False, LIVE_MAX_STREAMS=0)
    with LiveServer(app) as server:
        stream = EventStream(
            server.url,
            f"/live/elections/{made.election.id}/stream",
            sign_in_cookie(server.url, user.username, TEST_PASSWORD),
        )
        refused = stream.wait_for("refused")
        assert "limit of 0 live connections" in refused["data"]
        stream.close()


def test_streams_need_a_signed_in_user_and_a_real_election(client, client_as, create_election):
    made = create_election(status="open", precincts=1)
    assert client.get(f"/live/elections/{made.election.id}/stream").status_code == 302
    assert client_as("observer").get("/live/elections/99999/stream").status_code == 404


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_server_processes_both_see_a_change(database_url, create_election, create_user, run):
    """Fan-out across processes: a subscriber on each of two servers; one return saved; both get it."""
    made = create_election(status="open", precincts=1, contests=[("Mayor", 1, ["Ann Able", "Bob Baker"])])
    observer, clerk = create_user("observer"), create_user("clerk")
    env = {
        **os.environ,
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_SESSION_COOKIE_SECURE": "false",
        "PORTAL_LIVE_CHANGE_WINDOW_MS": "50",
    }
    servers, streams = [], []
    try:
        for _ in range(2):
            port = _free_port()
            servers.append((port, flask_server(port, env)))
        for port, _ in servers:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 20
            while True:
                try:
                    cookie = sign_in_cookie(base, observer.username, TEST_PASSWORD)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            stream = EventStream(base, f"/live/elections/{made.election.id}/stream", cookie)
            stream.wait_for(f"contest-{made.contests[0].id}")
            streams.append(stream)
        enter_return(run, made, clerk, made.precincts[0], (55, 45))  # saved by neither server
        for stream in streams:
            assert "55 · 55.00%" in stream.wait_for(f"contest-{made.contests[0].id}", "55 · 55.00%")["data"]
    finally:
        for stream in streams:
            stream.close()
        for _, process in servers:
            process.terminate()
            process.wait(10)


def test_a_draft_has_no_live_stream(client_as, create_election):
    draft = create_election(precincts=1)
    response = client_as("observer").get(f"/live/elections/{draft.election.id}/stream")
    assert response.status_code == 404 and "no live results" in response.text


def test_the_dashboard_embeds_the_live_panels(client_as, create_election):
    made = create_election(status="open", precincts=1)
    page = client_as("observer").get("/").text
    assert f'sse-connect="/live/elections/{made.election.id}/stream"' in page
    assert f'sse-swap="contest-{made.contests[0].id}"' in page and 'sse-swap="turnout"' in page


def test_hang_up_detection_works_above_descriptor_1023():
    """A worker holding 1,000 streams has descriptors above 1,023, where select() fails."""
    import resource
    import socket

    from portal.live.routes import hung_up

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1300:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(1300, hard), hard))
        except (ValueError, OSError):
            pytest.skip("cannot open enough descriptors here")
    padding = [socket.socket() for _ in range(1100)]
    try:
        ours, theirs = socket.socketpair()
        assert ours.fileno() > 1023
        assert not hung_up(ours)
        theirs.sendall(b"x")
        assert not hung_up(ours)  # data waiting is not a hang-up (and is not consumed)
        assert ours.recv(1) == b"x"
        theirs.close()
        assert hung_up(ours)
        ours.close()
    finally:
        for s in padding:
            s.close()


def test_a_void_and_a_decision_move_the_turnout_panel(watched, run, create_voters, create_user):
    """A void is announced like a check-in: the turnout panel drops by one; a decision on a
    provisional ballot moves its counts."""
    from datetime import timedelta

    from portal.checkin.provisionals import decide_provisionals
    from portal.checkin.queries import record_check_in, void_check_in
    from portal.db import transaction

    made, server, cookie, clerk, _ = watched
    john, ann = create_voters([("Smith", "John"), ("Lee", "Ann")], precinct=made.precincts[0])
    manager = create_user("manager")

    async def issue(voter, method):
        async with transaction() as db:
            return await record_check_in(
                db, actor=clerk, election_id=made.election.id, voter_id=voter, method=method
            )

    run(issue(john, "in_person"))
    provisional = run(issue(ann, "provisional"))
    stream = EventStream(server.url, f"/live/elections/{made.election.id}/stream", cookie)
    try:
        stream.wait_for("turnout", "2</strong> of 2")

        async def void():
            async with transaction() as db:
                await void_check_in(
                    db,
                    actor=clerk,
                    election_id=made.election.id,
                    voter_id=john,
                    reason="Wrong voter",
                    clerk_window=timedelta(minutes=15),
                )

        run(void())
        stream.wait_for("turnout", "1</strong> of 2")

        async def reject():
            async with transaction() as db:
                await decide_provisionals(
                    db,
                    actor=manager,
                    election_id=made.election.id,
                    check_in_ids=[provisional.id],
                    decision="reject",
                    reason="Not on the roll",
                    reasons=["Not on the roll"],
                )

        run(reject())
        update = stream.wait_for("turnout", "0</strong> of 2")
        assert "rejected (issued, not counted)" in update["data"]
    finally:
        stream.close()


def test_a_change_of_methods_reaches_the_open_panels(watched, run, create_user):
    """Adding a voting method while the election is open changes every contest panel's split: the
    panels are sent again at once, not at the next return."""
    from portal.db import transaction
    from portal.elections.queries import update_election

    made, server, cookie, _, _ = watched
    contest = made.contests[0]
    manager = create_user("manager")
    stream = EventStream(server.url, f"/live/elections/{made.election.id}/stream", cookie)
    try:
        first = stream.wait_for(f"contest-{contest.id}")
        assert "Mail" not in first["data"]  # one method counted: no split shown

        async def add_mail():
            async with transaction() as db:
                await update_election(
                    db,
                    actor=manager,
                    election_id=made.election.id,
                    seen_version=made.election.version,
                    name=made.election.name,
                    election_date=made.election.election_date,
                    kind=made.election.kind,
                    precinct_ids=None,
                    methods=["election_day", "absentee"],
                )

        run(add_mail())
        update = stream.wait_for(f"contest-{contest.id}", "Mail 0")
        assert int(update["id"]) > int(first["id"])
    finally:
        stream.close()


def test_panels_say_when_they_last_changed_not_when_they_were_sent(watched, run):
    """A quiet panel says "no change since" its render; a changed one "last change" with the time
    the change was heard, and a browser connecting later is sent that same time (a quiet feed at
    10:51 says "last change 10:35", not "updated 10:51", and not a bare "updated 10:35")."""
    import re
    from datetime import UTC, datetime, timedelta

    made, server, cookie, clerk, _ = watched
    event = f"contest-{made.contests[0].id}"
    stream = EventStream(server.url, f"/live/elections/{made.election.id}/stream", cookie)
    try:
        first = stream.wait_for(event)["data"]
        assert "no change since" in first and "data-quiet-since=" in first and "data-changed" not in first
        assert "no change since" in stream.wait_for("turnout")["data"]
        before = datetime.now(UTC)
        enter_return(run, made, clerk, made.precincts[0], (70, 30))
        update = stream.wait_for(event, "70 · 70.00%")["data"]
        stamp = re.search(r'data-changed="([^"]+)">last change (\d\d:\d\d:\d\d E[SD]T)<', update)
        changed = datetime.fromisoformat(stamp.group(1))
        assert before - timedelta(seconds=1) <= changed <= datetime.now(UTC)
    finally:
        stream.close()
    time.sleep(1.1)  # a later browser: the kept panel, with the time of the change
    later = EventStream(server.url, f"/live/elections/{made.election.id}/stream", cookie)
    try:
        kept = later.wait_for(event)["data"]
        assert f'data-changed="{stamp.group(1)}">last change {stamp.group(2)}<' in kept
    finally:
        later.close()


def test_each_write_announces_its_panels_once_and_only_on_commit(
    app, run, create_election, create_user, create_voters
):
    """The data layer sends domain signals; the live receivers turn each into one NOTIFY naming the
    panels it moved, inside the write's transaction: a rolled-back write announces nothing."""
    import asyncio
    import json

    import asyncpg
    from sqlalchemy.engine import make_url

    from portal.checkin.queries import record_check_in
    from portal.db import transaction
    from portal.elections.queries import move_election
    from portal.incidents.queries import report_incident
    from portal.live.hub import CHANNEL

    made = create_election(status="open", precincts=1, contests=[("Mayor", 1, ["Ann Able", "Bob Baker"])])
    election_id, contest = made.election.id, made.contests[0]
    clerk, manager = create_user("clerk"), create_user("manager")
    [voter, other] = create_voters([("Smith", "John"), ("Lee", "Ann")], precinct=made.precincts[0])
    heard: list[dict] = []

    async def listen() -> asyncpg.Connection:
        url = make_url(app.config["DATABASE_URL"])
        connection = await asyncpg.connect(
            host=url.query.get("host") or url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            database=url.database,
        )
        await connection.add_listener(CHANNEL, lambda *args: heard.append(json.loads(args[-1])))
        return connection

    async def check_in(voter_id: int, *, then_fail: bool = False) -> None:
        async with transaction() as db:
            await record_check_in(
                db, actor=clerk, election_id=election_id, voter_id=voter_id, method="in_person"
            )
            if then_fail:
                raise RuntimeError("rolled back")

    async def report() -> None:
        async with transaction() as db:
            await report_incident(
                db, actor=clerk, election_id=election_id, precinct_id=None, state_voter_id=None, body="x"
            )

    async def close() -> None:
        async with transaction() as db:
            await move_election(db, actor=manager, election_id=election_id, to="closed", seen_version=None)

    def heard_after(action) -> list[dict]:
        heard.clear()
        action()
        run(asyncio.sleep(0.3))
        return list(heard)

    listener = run(listen())
    try:
        with pytest.raises(RuntimeError):
            run(check_in(other, then_fail=True))
        run(asyncio.sleep(0.3))
        assert heard == []
        turnout = {"election": election_id, "panels": ["turnout"]}
        assert heard_after(lambda: run(check_in(voter))) == [turnout]
        returns = {"election": election_id, "panels": [f"contest-{contest.id}", "reporting"]}
        assert heard_after(lambda: enter_return(run, made, clerk, made.precincts[0], (7, 3))) == [returns]
        assert heard_after(lambda: run(report())) == [{"election": election_id, "panels": ["incidents"]}]
        assert heard_after(lambda: run(close())) == [{"election": election_id, "panels": ["*"]}]
    finally:
        run(listener.close())
