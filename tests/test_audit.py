"""The audit trail: every write appends a hash-chained event; `audit verify` checks the chain."""

from __future__ import annotations

import json

from sqlalchemy import select, text

from portal.audit.queries import search_events, verify_chain
from portal.db import reading, transaction
from tests.conftest import HX


def _events(run, **filters):
    async def go():
        async with reading() as db:
            return await search_events(db, **filters, limit=500)

    return run(go())


def test_every_write_is_audited_with_before_and_after(client_as, run):
    client = client_as("admin")
    client.post("/precincts/new", data={"code": "1-A", "name": "One"}, headers=HX)
    client.post("/precincts/1/edit", data={"code": "1-B", "name": "One", "version": "1"}, headers=HX)
    client.post("/precincts/1/delete", data={"version": "2"}, headers=HX)
    events = _events(run, entity="precinct")
    assert [e.action for e in events] == ["delete", "update", "create"]
    delete, update, create = events
    assert create.after == {"code": "1-A", "name": "One", "polling_place": ""} and create.before is None
    assert update.before["code"] == "1-A" and update.after["code"] == "1-B"
    assert delete.before["code"] == "1-B" and delete.after is None
    assert {e.username for e in events} == {client.user.username}


def test_failed_writes_leave_no_event(client_as, run):
    client = client_as("admin")
    client.post("/precincts/new", data={"code": "1-A", "name": "One"}, headers=HX)
    client.post("/precincts/new", data={"code": "1-A", "name": "Dup"}, headers=HX)
    assert len(_events(run, entity="precinct")) == 1


def test_chain_verifies_and_detects_tampering(client_as, run):
    client = client_as("admin")
    for n in range(3):
        client.post("/precincts/new", data={"code": f"{n}-A", "name": "P"}, headers=HX)

    async def verify():
        async with reading() as db:
            return await verify_chain(db)

    report = run(verify())
    assert report.intact and report.events >= 5

    async def tamper():
        async with transaction() as db:
            await db.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only"))
            target = await db.scalar(
                text("SELECT min(id) FROM audit_event WHERE action = 'create' AND entity = 'precinct'")
            )
            await db.execute(
                text('UPDATE audit_event SET after = \'{"code": "forged"}\' WHERE id = :id'), {"id": target}
            )
            await db.execute(text("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only"))
            return target

    target = run(tamper())
    report = run(verify())
    assert not report.intact and report.broken_at == target


def test_concurrent_writes_keep_one_chain(app, create_user, run):
    import asyncio

    from portal.audit.queries import record_event

    actor = create_user("admin")

    async def write(n):
        async with transaction() as db:
            await record_event(db, actor=actor, action="probe", entity="test", entity_id=n)

    async def many():
        await asyncio.gather(*(write(n) for n in range(30)))
        async with reading() as db:
            return await verify_chain(db)

    report = run(many())
    assert report.intact and report.events == 31


def test_the_chain_is_locked_only_while_committing(app, create_user, run):
    """The advisory lock that serialises appends is taken at COMMIT, not where a write records its
    event: a write that goes on reading after its event (a check-in answers with the desk's row and
    the precinct's turnout) must not hold every other write of the office behind it meanwhile."""
    from portal.audit.queries import AUDIT_LOCK_KEY, record_event

    actor = create_user("admin")

    async def go():
        async with transaction() as db:
            await record_event(db, actor=actor, action="probe", entity="test", entity_id=1)
            await db.execute(text("SELECT 1"))  # the rest of the write's work
            async with transaction() as other:  # another request meanwhile
                free = await other.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK_KEY})
            await record_event(db, actor=actor, action="probe", entity="test", entity_id=2)
        async with reading() as db:
            return free, await verify_chain(db)

    free, report = run(go())
    assert free, "the audit lock was held before COMMIT"
    assert report.intact and report.events == 3  # the user's creation, then both, in order
    events = _events(run, entity="test")
    assert [e.entity_id for e in events] == ["2", "1"] and events[0].prev_hash == events[1].hash


def test_audit_screen_filters(client_as, create_user):
    create_user("clerk", username="someone")
    manager = client_as("manager")
    html = manager.get("/audit?entity=user&action=create", headers=HX).text
    assert "someone" in html and "login" not in html
    mine = manager.get(f"/audit?user={manager.user.username}", headers=HX).text
    assert ">login<" in mine and "someone" not in mine
    assert "No event matches" in manager.get("/audit?user=nobody", headers=HX).text


def _cells(html: str) -> list[str]:
    """The audit list's change lines as a person reads them (tags gone, spaces collapsed)."""
    import html as markup
    import re

    lines = re.findall(r"<li>(.*?)</li>", html, flags=re.S)
    return [" ".join(markup.unescape(re.sub(r"<[^>]+>", "", line)).split()) for line in lines]


def test_the_audit_screen_shows_changed_fields_and_keeps_the_json(client_as):
    """One line per changed field, "field: old → new"; a creation "field: → new", a deletion
    "field: old →"; the stored JSON one click away in a <details>; the CSV as it was."""
    import csv
    import io

    admin = client_as("admin")
    admin.post("/precincts/new", data={"code": "1-A", "name": "One"}, headers=HX)
    admin.post("/precincts/1/edit", data={"code": "1-B", "name": "One", "version": "1"}, headers=HX)
    admin.post("/precincts/1/delete", data={"version": "2"}, headers=HX)
    html = admin.get("/audit?entity=precinct", headers=HX).text
    lines = _cells(html)
    assert "code: 1-A → 1-B" in lines  # the update: only what changed
    assert "name: One → One" not in lines and "name: → One" in lines  # (from the creation)
    assert "code: → 1-A" in lines and 'polling_place: → ""' in lines  # the creation
    assert "code: 1-B →" in lines and "name: One →" in lines  # the deletion
    assert html.count("<details") == 3 and "Full JSON" in html
    assert '<code>{"code": "1-A", "name": "One", "polling_place": ""}</code>' in html  # the stored JSON
    assert '<th scope="col">Changes</th>' in html
    body = admin.get("/audit/events.csv?entity=precinct").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == ["id", "time", "user", "action", "entity", "entity_id", "before", "after", "hash"]
    assert json.loads(rows[2][6])["code"] == "1-A" and json.loads(rows[2][7])["code"] == "1-B"


def test_changed_fields_reads_nested_objects_and_odd_values():
    from portal.audit.changes import changed_fields

    def lines(before, after):
        return [" ".join(f"{c.field}: {c.old} → {c.new}".split()) for c in changed_fields(before, after)]

    assert lines({"a": 1, "n": {"x": 1, "y": 2}}, {"a": 1, "n": {"x": 3, "y": 2}}) == ["n.x: 1 → 3"]
    assert lines({"s": None}, {"s": "open"}) == ["s: null → open"]
    assert lines({"v": [1, 2]}, {"v": [1, 3], "w": True}) == ["v: [1, 2] → [1, 3]", "w: → true"]
    assert lines(None, None) == [] and lines({"a": 1}, {"a": 1}) == []
    assert lines([1], [2]) == [": [1] → [2]"]  # not an object: one line, the whole value
    assert lines("<b>", None) == [": <b> →"]  # (escaped by Jinja where it is shown)


def test_cli_audit_verify(app, client_as):
    client_as("admin")
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 0 and "audit chain intact" in result.output


def test_audit_report_by_date_with_csv(app, client_as, create_user, run):
    import csv
    import io
    from datetime import timedelta

    from portal import clock

    create_user("clerk", username="dated-user")
    manager = client_as("manager")
    with app.app_context():
        today = clock.today()  # the office's day (between its midnight and UTC's, not UTC's)
    page = manager.get(f"/audit?since={today.isoformat()}&until={today.isoformat()}&entity=user").text
    assert "dated-user" in page and "data-print" in page
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert "No event matches" in manager.get(f"/audit?since={tomorrow}", headers=HX).text
    ignored = manager.get("/audit?since=not-a-date&entity=user").text
    assert "dated-user" in ignored and "From “not-a-date” is not a date (YYYY-MM-DD)" in ignored
    backwards = manager.get(f"/audit?since={tomorrow}&until={today.isoformat()}", headers=HX).text
    assert "From is after To" in backwards
    refused = manager.get("/audit/events.csv?until=31/12/2026")
    assert refused.status_code == 422 and "To “31/12/2026” is not a date" in refused.get_data(as_text=True)
    assert "&lt;script&gt;" in manager.get("/audit?since=<script>", headers=HX).text
    body = manager.get(f"/audit/events.csv?entity=user&since={today.isoformat()}").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][:4] == ["id", "time", "user", "action"]
    assert any("dated-user" in row[7] for row in rows[1:])
    assert client_as("observer").get("/audit/events.csv").status_code == 403


def test_truncate_is_refused(client_as, run):
    import pytest
    from sqlalchemy.exc import DBAPIError

    client_as("admin")  # (signing in writes an event)

    async def truncate():
        async with transaction() as db:
            await db.execute(text("TRUNCATE audit_event CASCADE"))

    with pytest.raises(DBAPIError, match="append-only"):
        run(truncate())
    assert _events(run)


def _head(run):
    from portal.audit.queries import chain_head

    async def go():
        async with reading() as db:
            return await chain_head(db)

    return run(go())


def test_deleting_the_newest_events_is_caught_by_a_recorded_head(app, client_as, run):
    """Without an anchor, cutting the end off the log leaves a chain that verifies. With the head
    written down (every printed report shows it), `audit verify --head` proves the cut."""
    client = client_as("admin")
    client.post("/precincts/new", data={"code": "1-A", "name": "P"}, headers=HX)
    head = _head(run)
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["audit", "verify", "--head", str(head)])
    assert ok.exit_code == 0 and f"head {head.event} is in the chain" in ok.output, ok.output
    client.post("/precincts/new", data={"code": "2-A", "name": "Q"}, headers=HX)

    async def cut_the_end():  # what the table's owner can do, triggers set aside
        async with transaction() as db:
            await db.execute(text("SET LOCAL session_replication_role = replica"))
            await db.execute(text("DELETE FROM audit_event WHERE id >= :id"), {"id": head.event})

    run(cut_the_end())
    plain = runner.invoke(args=["audit", "verify"])
    assert plain.exit_code == 0  # the chain that is left is consistent: hence the anchor
    anchored = runner.invoke(args=["audit", "verify", "--head", str(head)])
    assert anchored.exit_code == 1 and "events were deleted" in anchored.output, anchored.output
    assert runner.invoke(args=["audit", "verify", "--head", "12:nothex"]).exit_code == 2


def test_reports_and_certified_records_carry_the_head(client_as, create_election, run):
    made = create_election(status="open", precincts=1)
    page = client_as("observer").get(f"/elections/{made.election.id}/reports/summary").text
    head = _head(run)
    assert f"Audit head {head.event}:{head.hash}" in page


def test_the_database_writes_times_and_hashes_as_python_checks_them(app, run, create_user):
    """audit_append() (migration 0018) hashes in the database what `event_hash` checks in Python:
    the time as isoformat() writes it (microseconds only when there are some), and UTF-8 text with
    markup, quotes and characters outside ASCII."""
    from datetime import UTC, datetime

    from portal.audit.queries import record_event, stored_event_hash
    from portal.models import AuditEvent

    moments = [
        datetime(2026, 11, 3, 7, 15, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 3, 7, 15, 0, 1, tzinfo=UTC),
        datetime(2026, 11, 3, 23, 59, 59, 500000, tzinfo=UTC),
        datetime(1999, 12, 31, 0, 0, 7, 123456, tzinfo=UTC),
    ]

    async def as_written():
        async with reading() as db:
            return [await db.scalar(text("SELECT audit_time_text(:at)"), {"at": at}) for at in moments]

    assert run(as_written()) == [at.isoformat() for at in moments]
    actor = create_user("admin")

    async def append():
        async with transaction() as db:
            for n, value in enumerate(['Zoë "<b>" \\ ü', {"nested": [1, None, "ñ"]}, None]):
                await record_event(
                    db, actor=actor, action="test", entity="odd", entity_id=n, after={"v": value}
                )

    run(append())

    async def check():
        async with reading() as db:
            events = (
                await db.scalars(select(AuditEvent).where(AuditEvent.entity == "odd").order_by(AuditEvent.id))
            ).all()
            report = await verify_chain(db)
        return events, report

    events, report = run(check())
    assert report.intact and len(events) == 3
    assert events[1].prev_hash == events[0].hash and events[2].prev_hash == events[1].hash
    for event in events:
        assert event.hash == stored_event_hash(event)


def test_an_append_from_a_snapshot_transaction_is_refused(app, run, create_user):
    """A REPEATABLE READ transaction would read the chain's head as it was when its snapshot was
    taken: audit_append() refuses it rather than fork the chain."""
    import pytest
    from sqlalchemy.exc import DBAPIError

    from portal.audit.queries import record_event

    actor = create_user("admin")

    async def append():
        async with transaction() as db:
            await db.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            await record_event(db, actor=actor, action="test", entity="odd", entity_id=1)

    with pytest.raises(DBAPIError, match="READ COMMITTED"):
        run(append())
