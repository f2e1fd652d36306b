"""The audit trail: every write appends a hash-chained event; `audit verify` checks the chain."""

from __future__ import annotations

from sqlalchemy import text

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


def test_audit_screen_filters(client_as, create_user):
    create_user("clerk", username="someone")
    manager = client_as("manager")
    html = manager.get("/audit?entity=user&action=create", headers=HX).text
    assert "someone" in html and "login" not in html
    mine = manager.get(f"/audit?user={manager.user.username}", headers=HX).text
    assert ">login<" in mine and "someone" not in mine
    assert "No event matches" in manager.get("/audit?user=nobody", headers=HX).text


def test_cli_audit_verify(app, client_as):
    client_as("admin")
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 0 and "audit chain intact" in result.output


def test_audit_report_by_date_with_csv(client_as, create_user, run):
    import csv
    import io
    from datetime import UTC, datetime, timedelta

    create_user("clerk", username="dated-user")
    manager = client_as("manager")
    today = datetime.now(UTC).date()
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
    assert rows[0][:4] == ["id", "time_utc", "user", "action"]
    assert any("dated-user" in row[7] for row in rows[1:])
    assert client_as("observer").get("/audit/events.csv").status_code == 403
