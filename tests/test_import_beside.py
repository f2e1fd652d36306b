"""The CLI's check and load in one go: the load runs beside the check and commits only what the
check passed. A failed check withdraws it: nothing on the roll, no audit event, every index and
foreign key of the roll in place, even when the load was waiting on a lock when the check failed.

The bulk path (indexes set aside under an exclusive lock) is taken here with a few rows: its
threshold is lowered, the statements are the same as at 100,000 rows."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import asyncpg
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from portal.db import reading, transaction
from portal.models import ImportJob
from portal.voters.importing import checks as checks_module
from portal.voters.importing import load as load_module
from tests.test_imports import count_voters, csv_bytes, voter_line

SHAPE = """SELECT array_agg(pg_get_indexdef(indexrelid) ORDER BY 1) FROM pg_index
             WHERE indrelid = 'voter'::regclass
           UNION ALL
           SELECT array_agg(conname || ' ' || pg_get_constraintdef(oid) ORDER BY 1) FROM pg_constraint
             WHERE conrelid = 'voter'::regclass"""


@pytest.fixture
def bulk(monkeypatch):
    monkeypatch.setattr(load_module, "BULK_MIN_ROWS", 1)


def roll(run) -> dict:
    """What a withdrawn load must leave as it was: the roll's indexes and keys, its voters, the
    import audit events, and no session left in a transaction."""

    async def go():
        async with reading() as db:
            return {
                "shape": [row[0] for row in (await db.execute(text(SHAPE))).all()],
                "imports audited": await db.scalar(
                    text("SELECT count(*) FROM audit_event WHERE action = 'import'")
                ),
                "idle in transaction": await db.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND state LIKE 'idle in transaction%'"
                    )
                ),
            }

    return run(go())


def last_job(run) -> ImportJob:
    async def go():
        async with reading() as db:
            return await db.scalar(select(ImportJob).order_by(ImportJob.id.desc()).limit(1))

    return run(go())


def in_background(app, args: list[str]) -> tuple[threading.Thread, dict]:
    """The CLI started in a thread; its result lands in the dict (under "result") when it ends."""
    outcome: dict = {}

    def go():
        outcome["result"] = app.test_cli_runner().invoke(args=args)

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread, outcome


def invoke_within(app, args: list[str], seconds: float = 60):
    """The CLI in a thread, given `seconds` to finish (a withdrawn load that never ends fails the
    test instead of hanging it)."""
    thread, outcome = in_background(app, args)
    thread.join(seconds)
    return outcome.get("result")


def import_held_in_the_check(app, monkeypatch, database_url: str, path) -> tuple[threading.Thread, dict]:
    """The CLI importing `path` in a thread, once its check is at a statement that sleeps 30 s
    (the same-name check's place): for a test to cut the database under it."""
    from tests.test_resilience import admin_sql

    statements = checks_module.check_statements
    monkeypatch.setattr(
        checks_module,
        "check_statements",
        lambda job, **kw: {**statements(job, **kw), "like_file": "SELECT pg_sleep(30)"},
    )
    thread, outcome = in_background(app, ["import-voters", str(path)])
    deadline = time.monotonic() + 30
    while not admin_sql(database_url, "SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'"):
        assert time.monotonic() < deadline, "the check never reached its slow statement"
        time.sleep(0.05)
    monkeypatch.setattr(checks_module, "check_statements", statements)  # (the next import as usual)
    return thread, outcome


class Holder:
    """Another session holding a lock the load needs: a report reading the roll (ACCESS SHARE on
    voter) or a clerk's edit holding a voter's row (FOR UPDATE)."""

    def __init__(self, database_url: str, statement: str):
        url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.held, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._hold(url, statement)), daemon=True)

    async def _hold(self, url: str, statement: str) -> None:
        conn = await asyncpg.connect(url, server_settings={"application_name": "holder"})
        try:
            async with conn.transaction():
                await conn.execute(statement)
                self.held.set()
                await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 120)
        except (asyncpg.InterfaceError, asyncpg.PostgresConnectionError):
            pass  # (a test cut this session, as a database restart does)
        finally:
            await conn.close()

    def __enter__(self):
        self.thread.start()
        assert self.held.wait(10)
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join(10)


def scratch_tables(run) -> int:
    """An import's scratch tables in the database (staged parts, normalised rows, their partitions,
    the first load's copies of the precincts and parties)."""

    async def go():
        async with reading() as db:
            found = "SELECT count(*) FROM pg_class WHERE relname ~ '^import_(stage|norm|precincts|parties)_'"
            return await db.scalar(text(found))

    return run(go())


def phases(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("portal.voters.importing"))


def test_a_passed_check_is_loaded_in_bulk_beside_it(app, run, tmp_path, create_precinct, bulk, caplog):
    caplog.set_level(logging.INFO, logger="portal.voters.importing")
    create_precinct(code="111-C")
    before = roll(run)
    good = tmp_path / "good.csv"
    good.write_bytes(csv_bytes([voter_line(n) for n in range(1, 6)]))
    result = app.test_cli_runner().invoke(args=["import-voters", str(good)])
    assert result.exit_code == 0, result.output
    # the bulk path (indexes set aside and rebuilt), by a load that waited for the check's verdict
    assert "rebuilding indexes and foreign keys" in phases(caplog)
    assert "waiting for the check" in phases(caplog) and "withdrawn" not in phases(caplog)
    assert "checked 5 rows: 5 new" in result.output and "5 inserted" in result.output
    assert count_voters(run) == 5
    after = roll(run)
    assert after["shape"] == before["shape"]  # every index and foreign key rebuilt
    assert after["imports audited"] == before["imports audited"] + 1
    assert after["idle in transaction"] == 0


@pytest.mark.parametrize("path", ["bulk", "ordinary"])
def test_a_failed_check_withdraws_the_load(app, run, tmp_path, create_precinct, monkeypatch, path, caplog):
    caplog.set_level(logging.INFO, logger="portal.voters.importing")
    if path == "bulk":
        monkeypatch.setattr(load_module, "BULK_MIN_ROWS", 1)
    create_precinct(code="111-C")
    before = roll(run)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes([*(voter_line(n) for n in range(1, 6)), voter_line(6, dob="yesterday")]))
    result = app.test_cli_runner().invoke(args=["import-voters", str(bad)])
    assert result.exit_code == 1 and "NOT LOADED" in result.output and "line 7" in result.output
    assert "the load beside the check was withdrawn" in phases(caplog)  # (it had started)
    assert count_voters(run) == 0
    assert roll(run) == before


def test_no_load_starts_when_the_roll_checks_found_an_error(
    app, run, tmp_path, create_precinct, bulk, caplog
):
    """A new voter without a registration date is found before the load would start: it does not.
    (On a roll with voters: into an empty roll, a first load starts before the check, see below.)"""
    create_precinct(code="111-C")
    first = tmp_path / "first.csv"
    first.write_bytes(csv_bytes([voter_line(1)]))
    assert app.test_cli_runner().invoke(args=["import-voters", str(first)]).exit_code == 0
    caplog.set_level(logging.INFO, logger="portal.voters.importing")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes([voter_line(1), voter_line(2, registered="")]))
    result = app.test_cli_runner().invoke(args=["import-voters", str(bad)])
    assert result.exit_code == 1 and "a new voter needs the date they registered" in result.output
    assert "setting indexes aside" not in phases(caplog) and "withdrawn" not in phases(caplog)
    assert count_voters(run) == 1


def test_a_load_withdrawn_before_it_runs_sends_no_statement(
    app, run, tmp_path, create_precinct, bulk, caplog
):
    """Withdrawn between two of its statements (here: before its first), the load sends no other:
    a cancel PostgreSQL ignored between statements cannot let it write on."""
    from portal.voters import importing
    from portal.voters.importing.jobs import create_job

    caplog.set_level(logging.INFO, logger="portal.voters.importing")
    create_precinct(code="111-C")
    good = tmp_path / "good.csv"
    good.write_bytes(csv_bytes([voter_line(n) for n in range(1, 4)]))

    async def go():
        async with transaction() as db:
            job = await create_job(
                db,
                actor=None,
                filename="good.csv",
                path=good,
                size=1,
                sha256="-",
                analysis=importing.analyse(good),
            )
        checked = await importing.check_file(job.id)
        beside = load_module.Beside(checked, None)
        beside.start(3)
        await beside.withdraw()  # (before the load's task has run at all)
        return beside.task

    task = run(go())
    assert isinstance(task.exception(), load_module.LoadWithdrawn)
    assert "setting indexes aside" not in phases(caplog) and "writing the roll" not in phases(caplog)
    assert count_voters(run) == 0


@pytest.mark.parametrize(
    "lock",
    [
        "LOCK TABLE voter IN ACCESS SHARE MODE",  # the bulk load's DROP INDEX waits for it
        "SELECT 1 FROM voter WHERE state_voter_id = 'NC000001' FOR UPDATE",  # the UPDATE waits for it
    ],
    ids=["roll-read-by-a-report", "voter-held-by-an-edit"],
)
def test_a_load_waiting_on_a_lock_is_stopped_when_the_check_fails(
    app, run, tmp_path, database_url, create_precinct, monkeypatch, lock
):
    """The check fails while the load beside it is still waiting: the load's statement is cancelled
    at once (it would otherwise wait as long as the other session holds its lock)."""
    create_precinct(code="111-C")
    first = tmp_path / "first.csv"
    first.write_bytes(csv_bytes([voter_line(1)]))
    assert app.test_cli_runner().invoke(args=["import-voters", str(first)]).exit_code == 0
    if lock.startswith("LOCK"):
        monkeypatch.setattr(load_module, "BULK_MIN_ROWS", 1)
    before = roll(run)
    bad = tmp_path / "bad.csv"
    rows = [voter_line(1, last="Renamed"), *(voter_line(n) for n in range(2, 9)), voter_line(9, dob="x")]
    bad.write_bytes(csv_bytes(rows))
    with Holder(database_url, lock):
        result = invoke_within(app, ["import-voters", str(bad)], seconds=60)
        assert result is not None, "the withdrawn load was still waiting for the lock after 60 s"
    assert result.exit_code == 1 and "NOT LOADED" in result.output and "line 10" in result.output
    assert count_voters(run) == 1
    assert roll(run) == before


@pytest.fixture
def failing_check(app, run, tmp_path, create_precinct, monkeypatch, bulk):
    """failing_check(statement, hang=...): the CLI import of five good rows with the same-name-in-
    the-file check replaced by `statement`, which makes the check fail on the server while a bulk
    load runs beside it: the import must end (else `hang`), fail, and store nothing."""

    def attempt(statement: str, *, hang: str) -> None:
        statements = checks_module.check_statements
        monkeypatch.setattr(
            checks_module,
            "check_statements",
            lambda job, **kw: {**statements(job, **kw), "like_file": statement},
        )
        create_precinct(code="111-C")
        before = roll(run)
        good = tmp_path / "good.csv"
        good.write_bytes(csv_bytes([voter_line(n) for n in range(1, 6)]))
        result = invoke_within(app, ["import-voters", str(good)], seconds=60)
        assert result is not None, hang
        assert result.exit_code != 0
        assert count_voters(run) == 0
        assert roll(run) == before
        job = last_job(run)
        assert job.status == "failed" and "Nothing was loaded" in job.message

    return attempt


def test_a_check_that_fails_on_the_server_withdraws_the_load_first(run, failing_check):
    """A check statement fails on the server after the load beside it has written (here: one made
    to divide by zero a second after it starts): the load is withdrawn before the scratch tables
    it reads are dropped, else each would wait for the other."""
    failing_check(
        "SELECT 1 / (count(*) - 1) FROM pg_sleep(1)",  # (not folded away when planned)
        hang="the check's failure and the withdrawn load waited on each other",
    )

    assert scratch_tables(run) == 0


def test_a_check_that_would_wait_on_the_load_beside_it_fails_instead(monkeypatch, failing_check):
    """Beside a bulk load (which holds the roll and the tables its foreign keys point to until the
    verdict), a check statement that needs one of them gives up after the lock timeout: the check
    fails, the load is withdrawn, nothing is stored. (A check reading the precincts stands in here
    for a future one; none reads them today.)"""
    monkeypatch.setattr(checks_module, "BESIDE_LOCK_TIMEOUT", "1s")
    failing_check(
        # (half a second in, the load beside it has dropped its foreign keys: precinct is locked)
        "DO $$ BEGIN PERFORM pg_sleep(0.5); PERFORM count(*) FROM precinct; END $$",
        hang="the check waited for the load beside it, and the load for the check",
    )


def test_a_database_restart_under_a_load_beside_the_check_stores_nothing_and_the_next_import_loads(
    app, run, tmp_path, database_url, create_precinct, bulk, monkeypatch
):
    """Every session of the database is cut (as a restart does) while the load beside the check
    waits on a report's lock: the import ends with nothing stored, and the same file then loads.
    (The report holds the empty roll: the first load gives way at once to the usual way.)"""
    from tests.test_resilience import admin_sql, terminate_all_but_admin

    monkeypatch.setattr(load_module, "FIRST_LOAD_LOCK_WAIT", "100ms")

    create_precinct(code="111-C")
    before = roll(run)
    good = tmp_path / "good.csv"
    good.write_bytes(csv_bytes([voter_line(n) for n in range(1, 6)]))
    with Holder(database_url, "LOCK TABLE voter IN ACCESS SHARE MODE"):
        thread, outcome = in_background(app, ["import-voters", str(good)])
        waiting = (
            "SELECT 1 FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND query LIKE 'ALTER TABLE voter%'"
        )
        deadline = time.monotonic() + 30
        while not admin_sql(database_url, waiting):
            assert time.monotonic() < deadline, "the bulk load never waited on the report's lock"
            time.sleep(0.05)
        terminate_all_but_admin(database_url)  # (the report's session too)
        thread.join(60)
        assert not thread.is_alive(), "the import did not end after its sessions were cut"
    assert outcome["result"].exit_code != 0
    assert count_voters(run) == 0 and roll(run) == before
    again = app.test_cli_runner().invoke(args=["import-voters", str(good)])
    assert again.exit_code == 0, again.output
    assert count_voters(run) == 5


def test_a_load_withdrawn_while_the_database_refuses_connections_is_still_stopped(
    app, run, tmp_path, database_url, create_precinct, monkeypatch, bulk, caplog
):
    """The check fails because its sessions were cut, and new connections are refused, while the
    load beside it waits on a report's lock: the cancel cannot be sent at first. It is tried again
    until it can, so the load ends before the import does (it does not wait on, holding the roll,
    for the report)."""
    from tests.test_resilience import admin_sql, connections_refused

    monkeypatch.setattr(load_module, "FIRST_LOAD_LOCK_WAIT", "100ms")  # (the usual way, as above)
    caplog.set_level(logging.INFO, logger="portal.voters.importing")
    statements = checks_module.check_statements
    monkeypatch.setattr(
        checks_module,
        "check_statements",
        lambda job, **kw: {**statements(job, **kw), "like_file": "SELECT pg_sleep(30)"},  # (cut by the test)
    )
    create_precinct(code="111-C")
    good = tmp_path / "good.csv"
    good.write_bytes(csv_bytes([voter_line(n) for n in range(1, 6)]))
    name = database_url.rsplit("/", 1)[1]
    load_waiting = (
        f"SELECT pid FROM pg_stat_activity WHERE datname = '{name}'"
        " AND wait_event_type = 'Lock' AND query LIKE 'ALTER TABLE voter%'"
    )
    with Holder(database_url, "LOCK TABLE voter IN ACCESS SHARE MODE"):
        thread, outcome = in_background(app, ["import-voters", str(good)])
        deadline = time.monotonic() + 30
        while not (found := admin_sql(database_url, load_waiting)) or not admin_sql(
            database_url, "SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'"
        ):
            assert time.monotonic() < deadline, "the load never waited on the report's lock"
            time.sleep(0.05)
        load_pid = found[0]["pid"]
        with connections_refused(database_url):
            # every session of the portal but the load's (the report's stays: it holds the lock)
            admin_sql(
                database_url,
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
                f" AND pid <> {load_pid} AND application_name <> 'holder'",
            )
            time.sleep(1.5)  # (the check has failed; its cancels are refused meanwhile)
        thread.join(30)
        assert not thread.is_alive(), "the import did not end"
        # The load ended before the import did, while the report still holds its lock.
        assert not admin_sql(database_url, load_waiting)
    assert outcome["result"].exit_code != 0
    assert "could not cancel the load's statement" in phases(caplog)
    assert "the load beside the check was withdrawn" in phases(caplog)
    assert count_voters(run) == 0


def test_an_import_that_loses_the_database_says_so_plainly_and_stores_nothing(
    app, run, tmp_path, database_url, create_precinct, monkeypatch
):
    """Every session is cut and new connections are refused (a restart in progress) while the
    check runs: the command ends with a plain message, not a traceback, and nothing is stored."""
    from tests.test_resilience import connections_refused, terminate_all_but_admin

    create_precinct(code="111-C")
    good = tmp_path / "good.csv"
    good.write_bytes(csv_bytes([voter_line(n) for n in range(1, 6)]))
    thread, outcome = import_held_in_the_check(app, monkeypatch, database_url, good)
    with connections_refused(database_url):
        terminate_all_but_admin(database_url)
        thread.join(60)
    assert not thread.is_alive(), "the import did not end after its sessions were cut"
    result = outcome["result"]
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert "The database could not be reached, or the connection to it was lost" in result.output
    assert "Nothing was loaded" in result.output and "Traceback" not in result.output
    assert count_voters(run) == 0


# A first load: a file large enough for a bulk load into an empty roll is written part by part as
# the check normalises it (Beside.first_load). Here with a small file cut into its sixteen parts.


@pytest.fixture
def first_load(monkeypatch, bulk, create_precinct, create_party, caplog):
    from portal.voters.importing import staging

    monkeypatch.setattr(staging, "SPLIT_MIN_BYTES", 0)
    caplog.set_level(logging.INFO, logger="portal.voters.importing")
    return {"111-C": create_precinct(code="111-C"), "222-A": create_precinct(code="222-A")}, {
        "DEM": create_party(abbreviation="DEM"),
        "REP": create_party(abbreviation="REP"),
    }


FIRST_LOAD = "each part loaded once written"


def voters_by_id(run) -> dict[str, tuple]:
    async def go():
        async with reading() as db:
            found = await db.execute(
                text(
                    "SELECT v.state_voter_id, v.last_name, p.code, pa.abbreviation, v.date_of_birth::text"
                    " FROM voter v JOIN precinct p ON p.id = v.precinct_id"
                    " LEFT JOIN party pa ON pa.id = v.party_id"
                )
            )
            return {row[0]: tuple(row[1:]) for row in found.all()}

    return run(go())


def test_a_first_load_is_written_part_by_part_as_the_check_normalises_the_file(
    app, run, tmp_path, first_load, caplog
):
    before = roll(run)
    lines = [
        voter_line(n, last=f"Doe{n}", precinct=("111-C", "222-A")[n % 2], party=("DEM", "rep", "")[n % 3])
        for n in range(1, 81)
    ]
    good = tmp_path / "good.csv"
    good.write_bytes(csv_bytes(lines))
    result = app.test_cli_runner().invoke(args=["import-voters", str(good)])
    assert result.exit_code == 0, result.output
    assert FIRST_LOAD in phases(caplog) and "withdrawn" not in phases(caplog)
    assert "the check rules took" not in phases(caplog)  # (each part's rows were checked as it came)
    assert "checked 80 rows: 80 new" in result.output and "80 inserted" in result.output
    voters = voters_by_id(run)
    assert len(voters) == 80
    for n in range(1, 81):  # every precinct and party resolved through the copies the load made
        party = ("DEM", "REP", None)[n % 3]
        assert voters[f"NC{n:06d}"] == (f"Doe{n}", ("111-C", "222-A")[n % 2], party, "1980-02-29")
    after = roll(run)
    assert after["shape"] == before["shape"]
    assert after["imports audited"] == before["imports audited"] + 1
    assert after["idle in transaction"] == 0

    assert scratch_tables(run) == 0


@pytest.mark.parametrize(
    "fault, expected",
    [
        ("repeated ID", "line 71: Voter ID 'NC000004' is also on line 5"),
        ("bad date", "line 71: DOB '1980-02-30'"),
        (
            "no registration date",
            "line 71: Reg Date '' is blank: a new voter needs the date they registered",
        ),
        ("unknown precinct", "line 71: Precinct '999-Z' is not a precinct code"),
    ],
)
def test_a_first_load_whose_check_fails_is_withdrawn_and_names_the_files_lines(
    app, run, tmp_path, first_load, caplog, fault, expected
):
    """The load had started before the check: it is withdrawn, nothing is stored, and the errors
    carry the file's own line numbers (the parts' lines counted on from one part to the next). A
    repeated voter ID stops the load itself (the roll's unique ID): the check still names it."""
    before = roll(run)
    lines = [voter_line(n) for n in range(1, 81)]
    lines[69] = {
        "repeated ID": voter_line(70, vid="NC000004"),
        "bad date": voter_line(70, dob="1980-02-30"),
        "no registration date": voter_line(70, registered=""),
        "unknown precinct": voter_line(70, precinct="999-Z"),
    }[fault]
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes(lines))
    result = app.test_cli_runner().invoke(args=["import-voters", str(bad)])
    assert result.exit_code == 1 and "NOT LOADED" in result.output
    assert expected in result.output, result.output
    assert FIRST_LOAD in phases(caplog) and "the load beside the check was withdrawn" in phases(caplog)
    assert count_voters(run) == 0
    assert roll(run) == before


def test_impossible_dates_in_several_parts_are_each_named_and_the_parts_read_carefully_once_refused(
    app, run, tmp_path, first_load, caplog
):
    """The quick date cast refuses 30 February: that part is read again the careful way, and the
    parts after it are read the careful way at once. Every impossible date is named on its line,
    and the valid rows' dates, read either way, are loaded as written (a partial load)."""
    lines = [voter_line(n, dob=f"19{40 + n % 30}-0{1 + n % 9}-1{n % 10}") for n in range(1, 81)]
    for n in (12, 47, 75):
        lines[n - 1] = voter_line(n, dob="1980-02-30")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes(lines))
    result = app.test_cli_runner().invoke(args=["import-voters", str(bad)])
    assert result.exit_code == 1 and "NOT LOADED" in result.output
    for n in (12, 47, 75):
        assert f"line {n + 1}: DOB '1980-02-30' is not a date" in result.output, result.output
    assert FIRST_LOAD in phases(caplog) and phases(caplog).count("read again the careful way") == 1
    partial = app.test_cli_runner().invoke(args=["import-voters", "--partial", str(bad)])
    assert partial.exit_code == 0 and "77 inserted" in partial.output, partial.output
    voters = voters_by_id(run)
    assert {vid: row[3] for vid, row in voters.items()} == {
        f"NC{n:06d}": f"19{40 + n % 30}-0{1 + n % 9}-1{n % 10}" for n in range(1, 81) if n not in (12, 47, 75)
    }


def test_after_a_failed_first_load_the_valid_rows_load_or_the_missing_precinct_is_made(
    app, run, tmp_path, first_load
):
    """What a failed check offers after a withdrawn first load works on its checked rows: a partial
    load (the rejected rows set aside) and creating the precincts the file names."""
    lines = [voter_line(n) for n in range(1, 81)]
    lines[9] = voter_line(10, dob="someday")
    lines[69] = voter_line(70, precinct="999-Z")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes(lines))
    errors = tmp_path / "errors.csv"
    result = app.test_cli_runner().invoke(
        args=["import-voters", str(bad), "--partial", "--errors", str(errors)]
    )
    assert result.exit_code == 0, result.output
    assert "2 rows break a rule and were set aside" in result.output and "78 inserted" in result.output
    assert "NC000010" not in voters_by_id(run) and "NC000070" not in voters_by_id(run)

    run(_empty_the_roll())
    result = app.test_cli_runner().invoke(
        args=["import-voters", str(bad), "--create-missing", "precincts", "--partial"]
    )
    assert result.exit_code == 0, result.output
    assert "created 1 precincts" in result.output and "79 inserted" in result.output
    assert voters_by_id(run)["NC000070"][1] == "999-Z"


async def _empty_the_roll():
    async with transaction() as db:
        await db.execute(text("DELETE FROM voter"))


@pytest.mark.parametrize("table", ["voter", "precinct", "user_account"])
def test_a_first_load_kept_waiting_by_a_session_reading_the_roll_loads_the_usual_way(
    app, run, tmp_path, database_url, first_load, caplog, monkeypatch, table
):
    """A report holds the (empty) roll, or a table the roll's keys point to: the first load gives up
    waiting for it, and the file is checked and loaded the usual way (its load waits for the
    report, beside the check)."""
    monkeypatch.setattr(load_module, "FIRST_LOAD_LOCK_WAIT", "300ms")
    good = tmp_path / "good.csv"
    good.write_bytes(csv_bytes([voter_line(n) for n in range(1, 41)]))
    with Holder(database_url, f"LOCK TABLE {table} IN ACCESS SHARE MODE") as holder:
        threading.Timer(1, holder.release.set).start()
        result = invoke_within(app, ["import-voters", str(good)], seconds=60)
    assert result is not None and result.exit_code == 0, result and result.output
    assert FIRST_LOAD not in phases(caplog) and "normalising took" in phases(caplog)
    assert count_voters(run) == 40


def test_a_file_checked_against_an_empty_roll_is_not_loaded_partly_once_voters_were_added(
    app, run, tmp_path, first_load
):
    """Its check did not compare it with the roll (a first load held the roll empty): once voters
    are on the roll, its valid rows are not loaded from that check; it is to be checked again."""
    from portal.voters import importing

    lines = [voter_line(n) for n in range(1, 41)]
    lines[4] = voter_line(5, dob="someday")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes(lines))
    assert app.test_cli_runner().invoke(args=["import-voters", str(bad)]).exit_code == 1
    checked = last_job(run)
    assert checked.status == "invalid" and checked.counts["checked_on_empty_roll"]
    other = tmp_path / "other.csv"
    other.write_bytes(csv_bytes([voter_line(n, vid=f"ZZ{n:06d}") for n in range(1, 3)]))
    assert app.test_cli_runner().invoke(args=["import-voters", str(other)]).exit_code == 0

    with pytest.raises(importing.ImportFailed, match="Check the file again"):
        run(importing.load_file(checked.id, None, True))
    job = _job(run, checked.id)
    assert job.status == "invalid" and "Check the file again" in job.message
    assert count_voters(run) == 2


def _job(run, job_id: int) -> ImportJob:
    async def go():
        async with reading() as db:
            return await db.get(ImportJob, job_id)

    return run(go())


def test_a_check_stopped_with_ctrl_c_withdraws_the_load_and_leaves_no_scratch_tables(
    app, run, tmp_path, first_load, monkeypatch
):
    """The CLI stopped (its coroutine cancelled) while the first load is written beside the check:
    the load rolls back, the scratch tables go, and the job says it was stopped."""
    from portal.voters import importing
    from portal.voters.importing.jobs import create_job

    statements = checks_module.check_statements
    monkeypatch.setattr(
        checks_module,
        "check_statements",
        lambda job, **kw: {**statements(job, **kw), "like_file": "SELECT pg_sleep(20)"},
    )
    before = roll(run)
    good = tmp_path / "good.csv"
    good.write_bytes(csv_bytes([voter_line(n) for n in range(1, 41)]))

    async def go():
        async with transaction() as db:
            job = await create_job(
                db, actor=None, filename="good.csv", path=good, size=1, sha256="-",
                analysis=importing.analyse(good),
            )  # fmt: skip
        task = asyncio.create_task(importing.check_and_load(job.id, None))
        for _ in range(200):
            async with reading() as db:
                sleeping = "SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(20)'"
                if await db.scalar(text(sleeping)):
                    break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the check never reached its slow statement")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return job.id

    job_id = run(go())
    assert scratch_tables(run) == 0
    job = _job(run, job_id)
    assert job.status == "failed" and job.message == "The check was stopped. Nothing was loaded."
    assert count_voters(run) == 0 and roll(run) == before


def test_a_database_restart_under_a_first_load_stores_nothing_and_the_next_import_loads(
    app, run, tmp_path, database_url, first_load, monkeypatch, caplog
):
    """Every session is cut (as a restart does) while a first load holds the roll with every part
    written and the check is still at work: nothing is stored, the roll keeps its indexes and
    keys, no scratch table is left, and the same file then loads."""
    from tests.test_resilience import terminate_all_but_admin

    before = roll(run)
    good = tmp_path / "good.csv"
    good.write_bytes(csv_bytes([voter_line(n) for n in range(1, 41)]))
    thread, outcome = import_held_in_the_check(app, monkeypatch, database_url, good)
    assert FIRST_LOAD in phases(caplog)
    terminate_all_but_admin(database_url)
    thread.join(60)
    assert not thread.is_alive(), "the import did not end after its sessions were cut"
    assert outcome["result"].exit_code != 0
    assert count_voters(run) == 0 and roll(run) == before
    assert scratch_tables(run) == 0
    again = app.test_cli_runner().invoke(args=["import-voters", str(good)])
    assert again.exit_code == 0, again.output
    assert count_voters(run) == 40
