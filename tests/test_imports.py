"""Voter-file import: preview, checks, all-or-nothing load, reports, the CLI."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import date

import pytest
from sqlalchemy import func, select, text

from portal.db import reading, transaction
from portal.models import ImportJob, Voter
from tests.conftest import HX, TEST_PASSWORD

HEADER = "Voter ID,Last Name,First Name,DOB,Street Address,City,Zip,Precinct,Party,Status,Reg Date"


def voter_line(
    n: int, *, last="Doe", first="Jane", dob="1980-02-29", precinct="111-C", party="", **kw
) -> str:
    cells = [
        kw.get("vid", f"NC{n:06d}"),
        last,
        first,
        dob,
        kw.get("address", f"{n} Elm St"),
        "Riverton",
        "27601",
        precinct,
        party,
        kw.get("status", "active"),
        kw.get("registered", "2000-01-01"),
    ]
    return ",".join(cells)


def csv_bytes(lines: list[str], *, encoding="utf-8", bom=False, newline="\n") -> bytes:
    data = newline.join([HEADER, *lines]) + newline
    return (b"\xef\xbb\xbf" if bom else b"") + data.encode(encoding)


@pytest.fixture
def importer(client_as, create_precinct, create_party):
    create_precinct(code="111-C")
    create_party(abbreviation="DEM")
    return client_as("manager")


def upload(client, data: bytes, **fields):
    return client.post(
        "/voters/import",
        data={"file": (io.BytesIO(data), "voters.csv"), "encoding": "auto", "date_format": "iso", **fields},
        content_type="multipart/form-data",
    )


def wait(run, job_id: int, timeout: float = 30) -> ImportJob:
    from portal.voters.importing import RUNNING, get_job

    async def current():
        async with reading() as db:
            return await get_job(db, job_id)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = run(current())
        if job.status not in RUNNING:
            return job
        time.sleep(0.05)
    raise AssertionError(f"import {job_id} still {job.status}")


def check(client, run, job_id: int, mapping: dict | None = None, date_format=None) -> ImportJob:
    """Post the mapping form as the page shows it (with `mapping` and `date_format` changed)."""
    page = client.get(f"/voters/imports/{job_id}").text
    selected = {}
    for block in page.split("<select")[1:]:
        name = re.search(r'name="(map_\w+|date_format)"', block)
        chosen = re.search(r'<option value="([\w,]+)" selected', block.split("</select>")[0])
        if name and chosen:
            selected[name.group(1)] = chosen.group(1)
    data = {**selected, **(mapping or {})}
    data["date_format"] = date_format or selected.get("date_format", "iso")
    response = client.post(f"/voters/imports/{job_id}/check", data=data)
    assert response.status_code == 303, response.text
    return wait(run, job_id)


def count_voters(run) -> int:
    async def go():
        async with reading() as db:
            return await db.scalar(select(func.count()).select_from(Voter))

    return run(go())


def job_id_from(response) -> int:
    assert response.status_code == 303, response.text[:500]
    return int(response.location.rsplit("/", 1)[1])


def test_preview_check_and_load(importer, run):
    data = csv_bytes(
        [voter_line(1, party="dem"), voter_line(2, last="Zoë", first="Ünal")], bom=True, newline="\r\n"
    )
    job_id = job_id_from(upload(importer, data))
    preview = importer.get(f"/voters/imports/{job_id}").text
    assert "How the columns map" in preview and "NC000001" in preview and "Zoë" in preview
    assert 'name="map_date_of_birth"' in preview and "Check every row" in preview
    job = check(importer, run, job_id)
    assert job.status == "validated", job.message
    assert job.counts == {
        "rows": 2,
        "new": 2,
        "updated": 0,
        "errors": 0,
        "duplicates": 0,
        "weak_duplicates": 0,
    }
    page = importer.get(f"/voters/imports/{job_id}").text
    assert "Every row passed the checks. Nothing is stored yet." in page and "Load 2 rows" in page
    assert count_voters(run) == 0
    assert importer.post(f"/voters/imports/{job_id}/load").status_code == 303
    job = wait(run, job_id)
    assert job.status == "loaded" and job.counts["inserted"] == 2
    assert "Loaded: 2 new voters" in importer.get(f"/voters/imports/{job_id}").text
    assert "Ünal" in importer.get("/voters?q=zo").text

    async def audit():
        from portal.audit.queries import search_events

        async with reading() as db:
            return await search_events(db, action="import")

    [event] = run(audit())
    assert event.after["inserted"] == 2 and event.after["sha256"] == job.sha256


def test_the_check_page_warns_before_a_load_that_pauses_the_portal(importer, run, create_voters, monkeypatch):
    """A bulk load (a first load, or a file the size of the roll) locks the roll and the tables its
    foreign keys point to: the page says so before the button. (The threshold is lowered here.)"""
    from portal.voters.importing import load

    create_voters(count=3)

    async def analyze():
        async with transaction() as db:
            await db.execute(text("ANALYZE voter"))  # (the roll's size as the load reads it)

    run(analyze())
    job_id = job_id_from(upload(importer, csv_bytes([voter_line(n) for n in range(1, 4)])))
    assert check(importer, run, job_id).status == "validated"
    warning = "The portal pauses during this load."
    monkeypatch.setattr(load, "BULK_MIN_ROWS", 3)
    assert warning in importer.get(f"/voters/imports/{job_id}").text  # 3 new voters, a roll of 3
    monkeypatch.setattr(load, "BULK_MIN_ROWS", 4)
    assert warning not in importer.get(f"/voters/imports/{job_id}").text
    create_voters(count=1)
    run(analyze())
    monkeypatch.setattr(load, "BULK_MIN_ROWS", 1)
    assert warning not in importer.get(f"/voters/imports/{job_id}").text  # a roll of 4 is larger


def test_existing_voters_are_updated_and_counted(importer, run):
    run_import(importer, run, [voter_line(1), voter_line(2)])
    job = run_import(importer, run, [voter_line(1, address="9 New Rd"), voter_line(2), voter_line(3)])
    assert job.counts["new"] == 1 and job.counts["inserted"] == 1
    assert job.counts["updated"] == 1 and job.counts["unchanged"] == 1
    assert "9 New Rd" in importer.get("/voters?q=NC000001").text


def run_import(client, run, lines, **upload_fields) -> ImportJob:
    job_id = job_id_from(upload(client, csv_bytes(lines), **upload_fields))
    job = check(client, run, job_id)
    assert job.status == "validated", (job.message, job.counts)
    client.post(f"/voters/imports/{job_id}/load")
    job = wait(run, job_id)
    assert job.status == "loaded", job.message
    return job


def test_latin1_files_are_detected(importer, run):
    job_id = job_id_from(
        upload(importer, csv_bytes([voter_line(1, last="Peña", first="José")], encoding="latin-1"))
    )
    job = check(importer, run, job_id)
    assert job.encoding == "latin-1" and job.status == "validated"
    importer.post(f"/voters/imports/{job_id}/load")
    wait(run, job_id)
    assert "Peña" in importer.get("/voters?q=pe").text


def test_wrong_encoding_is_refused_at_upload(importer, run):
    lines = [voter_line(n) for n in range(1, 5)] + [voter_line(5, last="Peña")]
    response = upload(importer, csv_bytes(lines, encoding="latin-1"), encoding="utf-8")
    assert response.status_code == 422
    assert "The file is not UTF-8 text" in response.text and "choose Latin-1" in response.text


def test_wrong_encoding_past_the_preview_names_the_line(importer, run):
    lines = [voter_line(n) for n in range(1, 4000)] + [voter_line(4000, last="Peña")]
    job_id = job_id_from(upload(importer, csv_bytes(lines, encoding="latin-1")))  # its head reads as UTF-8
    job = check(importer, run, job_id)
    assert job.status == "invalid"
    assert job.message == (
        "Line 4001 is not valid UTF-8 text. The file is probably Latin-1: choose Latin-1 and import again."
    )
    assert count_voters(run) == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV text file"),
        (HEADER.encode() + b"\n", "has a header but no voter rows"),
        (b"just one column\nvalue\n", "The file has 1 column(s)"),
        (b"a,b,a\n1,2,3\n", "Columns 1 and 3 have the same name"),
    ],
)
def test_files_that_are_not_voter_files(importer, run, data, message):
    response = upload(importer, data)
    assert response.status_code == 422 and message in response.text
    assert "Nothing was stored." in response.text


def test_upload_limit(app_factory, client_as, create_precinct):
    app = app_factory(VOTER_IMPORT_MAX_BYTES=2000)
    client = app.test_client()
    user = client_as("manager").user
    client.post("/login", data={"username": user.username, "password": "correct horse battery staple"})
    response = upload(client, csv_bytes([voter_line(n) for n in range(100)]))
    assert response.status_code == 413 and "larger than the limit" in response.text
    response = client.post("/precincts/new", data={"code": "1-A", "name": "x" * 5000}, headers=HX)
    assert response.status_code == 422  # validated as usual: the import's limit is its own


def test_missing_required_columns(importer, run):
    job_id = job_id_from(upload(importer, b"Voter ID,Last Name,First Name\nNC1234,Doe,Jane\n"))
    page = importer.get(f"/voters/imports/{job_id}").text
    assert "Date of birth" in page
    response = importer.post(
        f"/voters/imports/{job_id}/check",
        data={"map_state_voter_id": "0", "map_last_name": "1", "map_first_name": "2"},
    )
    assert response.status_code == 422
    assert "Map the required columns: Address, Precinct, Date of birth or birth year." in response.text


def test_every_bad_row_is_reported_and_nothing_is_loaded(importer, run):
    lines = [
        voter_line(1),
        voter_line(2, vid="NC000001"),  # duplicate voter ID in the file
        voter_line(3, dob="03/04/1990"),  # other date format
        voter_line(4, dob="1981-02-29"),  # not a real date
        voter_line(5, last='=HYPERLINK("x")'),  # formula
        voter_line(6, first="<script>alert(1)</script>"),  # HTML
        voter_line(7, address="x" * 201),  # too long
        voter_line(8, precinct="NOPE"),  # unknown precinct
        voter_line(9, party="XYZ"),  # unknown party
        voter_line(10, status="zombie"),
        voter_line(11, registered="2099-01-01"),
        voter_line(12, vid="bad id!"),
        voter_line(13, last=""),
    ]
    job_id = job_id_from(upload(importer, csv_bytes(lines)))
    job = check(importer, run, job_id)
    assert job.status == "invalid" and job.counts["errors"] == 12
    page = importer.get(f"/voters/imports/{job_id}").text
    assert "Nothing was loaded." in page and "12 of 13 rows break a rule" in page
    for expected in (
        "is also on line 2",
        "is not a date in the YYYY-MM-DD form",
        "spreadsheet formulas",
        "is longer than 200 characters",
        "is not a precinct code",
        "is not a party abbreviation",
        "must be active, inactive or removed",
        "is in the future",
        "must be 4 to 20 letters and digits",
        "is empty",
    ):
        assert expected in page, expected
    assert "&lt;script&gt;" in page and "<script>alert" not in page
    assert count_voters(run) == 0
    assert importer.post(f"/voters/imports/{job_id}/load").status_code == 409
    report = list(
        csv.reader(io.StringIO(importer.get(f"/voters/imports/{job_id}/issues.csv").get_data(as_text=True)))
    )
    assert report[0] == ["line", "column", "value", "reason"]
    assert ["4", "DOB", "03/04/1990", "is not a date in the YYYY-MM-DD form"] in report
    # (a date of the right shape but none on the calendar: the part read again the careful way)
    assert ["5", "DOB", "1981-02-29", "is not a date in the YYYY-MM-DD form"] in report
    assert any(row[2].startswith("'=HYPERLINK") for row in report)  # neutralised for spreadsheets
    assert not [row for row in report[1:] if row[2][:1] and row[2][0] in "=+-@"]


def test_other_date_formats_when_chosen(importer, run):
    job_id = job_id_from(
        upload(importer, csv_bytes([voter_line(1, dob="02/29/1980", registered="1/2/2000")]))
    )
    assert check(importer, run, job_id, date_format="us").status == "validated"
    importer.post(f"/voters/imports/{job_id}/load")
    wait(run, job_id)

    async def born():
        async with reading() as db:
            return await db.scalar(select(Voter.date_of_birth))

    assert run(born()) == date(1980, 2, 29)


@pytest.mark.parametrize("large", [False, True])
def test_likely_duplicates_are_flagged_not_merged(importer, run, create_voters, monkeypatch, large):
    """(`large`: compared with the roll as a large file is, in one pass over the roll.)"""
    from portal.voters.importing import checks

    monkeypatch.setattr(checks, "HASH_JOIN_ROWS", 0 if large else checks.HASH_JOIN_ROWS)
    create_voters([("Doe", "Jane")], date_of_birth=date(1980, 2, 29), state_voter_id="OLD00001")
    job_id = job_id_from(
        upload(importer, csv_bytes([voter_line(1), voter_line(2, first="Jane", last="Doe")]))
    )
    job = check(importer, run, job_id)
    assert job.status == "validated" and job.counts["duplicates"] == 2
    page = importer.get(f"/voters/imports/{job_id}").text
    assert (
        "same name and date of birth as voter OLD00001" in page
        and "same name and date of birth as line 2" in page
    )
    importer.post(f"/voters/imports/{job_id}/load")
    assert wait(run, job_id).counts["inserted"] == 2
    assert count_voters(run) == 3


@pytest.mark.parametrize("bulk", [False, True])
def test_a_failure_halfway_through_the_load_changes_nothing(importer, run, monkeypatch, bulk):
    from portal.voters.importing import load

    if bulk:
        monkeypatch.setattr(load, "BULK_MIN_ROWS", 1)
    run_import(importer, run, [voter_line(n) for n in range(1, 4)])
    before = count_voters(run)

    async def sabotage(on: bool):
        async with transaction() as db:
            if on:
                await db.execute(
                    text(
                        "CREATE FUNCTION fail_halfway() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                        "IF NEW.state_voter_id = 'NC000030' THEN RAISE EXCEPTION 'injected failure'; END IF; "
                        "RETURN NEW; END $$"
                    )
                )
                await db.execute(
                    text(
                        "CREATE TRIGGER fail_halfway BEFORE INSERT ON voter"
                        " FOR EACH ROW EXECUTE FUNCTION fail_halfway()"
                    )
                )
            else:
                await db.execute(text("DROP TRIGGER fail_halfway ON voter"))
                await db.execute(text("DROP FUNCTION fail_halfway()"))

    job_id = job_id_from(
        upload(importer, csv_bytes([voter_line(n, address=f"{n} New Rd") for n in range(1, 60)]))
    )
    assert check(importer, run, job_id).status == "validated"
    run(sabotage(True))
    try:
        importer.post(f"/voters/imports/{job_id}/load")
        job = wait(run, job_id)
    finally:
        run(sabotage(False))
    assert job.status == "failed" and "Nothing was loaded" in job.message
    assert "injected failure" not in job.message  # no exception text on the page: it is logged
    assert count_voters(run) == before
    assert "1 Elm St" in importer.get("/voters?q=NC000001").text  # the updates were rolled back too

    async def schema():
        async with reading() as db:
            indexes = set(
                await db.scalars(text("SELECT indexname FROM pg_indexes WHERE tablename = 'voter'"))
            )
            keys = set(
                await db.scalars(
                    text(
                        "SELECT conname FROM pg_constraint"
                        " WHERE conrelid = 'voter'::regclass AND contype = 'f'"
                    )
                )
            )
            return indexes, keys

    indexes, keys = run(schema())
    assert {"ix_voter_name", "ix_voter_address", "ix_voter_registration", "ix_voter_precinct_name"} <= indexes
    assert keys == {
        "fk_voter_precinct_id_precinct",
        "fk_voter_party_id_party",
        "fk_voter_updated_by_id_user_account",
    }


def test_bulk_load_puts_indexes_and_keys_back(importer, run, monkeypatch):
    from portal.voters.importing import load

    monkeypatch.setattr(load, "BULK_MIN_ROWS", 1)
    job = run_import(importer, run, [voter_line(n) for n in range(1, 30)])
    assert job.counts["inserted"] == 29

    async def state():
        async with reading() as db:
            return (
                await db.scalar(text("SELECT count(*) FROM pg_indexes WHERE tablename = 'voter'")),
                await db.scalar(
                    text(
                        "SELECT count(*) FROM pg_constraint"
                        " WHERE conrelid = 'voter'::regclass AND contype = 'f'"
                    )
                ),
            )

    assert run(state()) == (6, 3)
    assert "Doe, Jane" in importer.get("/voters?q=doe").text


def test_progress_fragment_polls_while_running(importer, run):
    job_id = job_id_from(upload(importer, csv_bytes([voter_line(1)])))

    async def set_running():
        from datetime import UTC, datetime, timedelta

        async with transaction() as db:
            job = await db.get(ImportJob, job_id)
            job.status, job.phase, job.progress, job.rows_done = "validating", "Checking every row", 0.5, 500
            job.started_at = datetime.now(UTC) - timedelta(seconds=10)
            job.heartbeat_at = datetime.now(UTC)

    run(set_running())
    fragment = importer.get(f"/voters/imports/{job_id}", headers=HX).text
    assert 'hx-trigger="every 1s"' in fragment and "Checking every row" in fragment
    assert re.search(r"50% · 500 rows · \d+ rows/s\s+· about \d+ s left", fragment)
    assert 'value="0.500"' in fragment


def test_a_job_whose_worker_died_is_shown_failed(importer, run):
    job_id = job_id_from(upload(importer, csv_bytes([voter_line(1)])))

    async def orphan():
        from datetime import UTC, datetime, timedelta

        async with transaction() as db:
            job = await db.get(ImportJob, job_id)
            job.status, job.heartbeat_at = "loading", datetime.now(UTC) - timedelta(minutes=10)

    run(orphan())
    assert (
        "The import stopped (the server restarted). Nothing was loaded."
        in importer.get(f"/voters/imports/{job_id}").text
    )


def test_cli_import(app, run, tmp_path, create_precinct):
    create_precinct(code="111-C")
    good = tmp_path / "good.csv"
    good.write_bytes(csv_bytes([voter_line(n) for n in range(1, 6)]))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["import-voters", str(good)])
    assert result.exit_code == 0, result.output
    assert "checked 5 rows: 5 new" in result.output and "5 inserted" in result.output
    assert good.exists()  # the CLI never deletes the user's file
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes([voter_line(7, dob="yesterday")]))
    result = runner.invoke(args=["import-voters", str(bad)])
    assert result.exit_code == 1 and "NOT LOADED" in result.output and "line 2" in result.output
    checked = runner.invoke(args=["import-voters", "--check-only", str(good)])
    assert (
        checked.exit_code == 0
        and "5 already on the roll" in checked.output
        and "inserted" not in checked.output
    )
    assert count_voters(run) == 5


def test_a_load_that_only_adds_voters_leaves_the_roll_ready_for_index_only_searches(
    app, run, tmp_path, create_precinct
):
    """After it, the roll's pages are marked all-visible (VACUUM): its searches stay index-only."""
    create_precinct(code="111-C")
    good = tmp_path / "good.csv"
    good.write_bytes(csv_bytes([voter_line(n) for n in range(1, 200)]))
    assert app.test_cli_runner().invoke(args=["import-voters", str(good)]).exit_code == 0

    async def visibility():
        async with reading() as db:
            return (
                await db.execute(text("SELECT relpages, relallvisible FROM pg_class WHERE relname = 'voter'"))
            ).one()

    pages, visible = run(visibility())
    assert pages > 0 and visible == pages


def test_imports_are_for_managers_and_admins(client_as):
    assert client_as("clerk").get("/voters/import").status_code == 403
    assert client_as("manager").get("/voters/import").status_code == 200


def test_a_check_never_loaded_expires_with_its_scratch_table(importer, run):
    from datetime import UTC, datetime, timedelta

    job_id = job_id_from(upload(importer, csv_bytes([voter_line(1)])))
    assert check(importer, run, job_id).status == "validated"

    async def age_and_scratch():
        async with transaction() as db:
            job = await db.get(ImportJob, job_id)
            job.heartbeat_at = datetime.now(UTC) - timedelta(days=2)
        async with reading() as db:
            return await db.scalar(text(f"SELECT to_regclass('import_norm_{job_id}') IS NOT NULL"))

    assert run(age_and_scratch()) is True
    upload(importer, csv_bytes([voter_line(2)]))  # any new upload tidies up

    async def after():
        async with reading() as db:
            job = await db.get(ImportJob, job_id)
            return (
                job.status,
                job.message,
                await db.scalar(text(f"SELECT to_regclass('import_norm_{job_id}') IS NULL")),
            )

    status, message, dropped = run(after())
    assert status == "failed" and "expired" in message and dropped


def test_the_scratch_tables_of_an_import_stopped_mid_run_are_dropped_a_day_later(importer, run):
    """A check or load cut off by a database restart could not record its end nor drop its scratch
    tables (the staged parts, the normalised rows, a first load's copies), and stays "validating".
    A day without a heartbeat later, the next upload marks it failed and drops them."""
    from datetime import UTC, datetime, timedelta

    job_id = job_id_from(upload(importer, csv_bytes([voter_line(1)])))
    left = [f"import_stage_{job_id}", f"import_stage_{job_id}_7", f"import_norm_{job_id}"]
    left.append(f"import_precincts_{job_id}")

    async def stopped_mid_run(hours: int):
        async with transaction() as db:
            job = await db.get(ImportJob, job_id)
            job.status, job.phase = "validating", "Checking every row"
            job.heartbeat_at = datetime.now(UTC) - timedelta(hours=hours)
            for table in left:
                await db.execute(text(f"CREATE UNLOGGED TABLE IF NOT EXISTS {table} (line bigint)"))

    async def state():
        async with reading() as db:
            job = await db.get(ImportJob, job_id)
            found = [await db.scalar(text(f"SELECT to_regclass('{t}') IS NOT NULL")) for t in left]
            return job.status, job.message, found

    run(stopped_mid_run(hours=2))  # (not yet: a running import's tables are never taken from it early)
    upload(importer, csv_bytes([voter_line(2)]))
    assert run(state())[0] == "validating" and run(state())[2] == [True] * 4
    run(stopped_mid_run(hours=25))
    upload(importer, csv_bytes([voter_line(3)]))
    status, message, found = run(state())
    assert status == "failed" and message == "The import stopped (the server restarted). Nothing was loaded."
    assert found == [False] * 4


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"x" * (140 * 1024) + b",b,c\n1,2,3\n", "a value is longer than 128 KiB"),
        (
            ",".join(f"c{n}" for n in range(10_000)).encode() + b"\n" + b"1," * 9_999 + b"1\n",
            "10,000 columns",
        ),
    ],
)
def test_damaged_or_absurd_files_get_a_clear_message(importer, data, message):
    response = upload(importer, data)
    assert response.status_code == 422 and message in response.text, response.text[-2000:]
    assert "Traceback" not in response.text and "CREATE" not in response.text


def test_a_bare_carriage_return_inside_a_value_is_named(importer, run):
    data = csv_bytes([voter_line(1, first="Ja\rne"), voter_line(2)])
    job = check(importer, run, job_id_from(upload(importer, data)))
    assert job.status == "invalid"
    assert "line break inside a value" in job.message or "fewer columns" in job.message, job.message
    assert count_voters(run) == 0


def test_classic_mac_line_endings_are_read(importer, run):
    data = csv_bytes([voter_line(1), voter_line(2)], newline="\r")
    job = check(importer, run, job_id_from(upload(importer, data)))
    assert job.status == "validated", job.message


def stored_voter(run, state_voter_id: str) -> Voter:
    async def go():
        async with reading() as db:
            return await db.scalar(select(Voter).where(Voter.state_voter_id == state_voter_id))

    return run(go())


def test_blanks_in_an_update_keep_what_is_stored(importer, run):
    """The outside test's case: a blank registration date overwrote a real one with today."""
    run_import(importer, run, [voter_line(1, registered="2022-02-04", status="inactive", party="DEM")])
    before = stored_voter(run, "NC000001")
    job = run_import(importer, run, [voter_line(1, registered="", status="", party="", address="9 New Rd")])
    after = stored_voter(run, "NC000001")
    assert job.counts["updated"] == 1
    assert str(after.registration_date) == "2022-02-04" and after.status == "inactive"
    assert after.party_id == before.party_id and after.address == "9 New Rd"
    # A value does replace what is stored.
    run_import(importer, run, [voter_line(1, registered="2023-03-05", status="active", address="9 New Rd")])
    assert str(stored_voter(run, "NC000001").registration_date) == "2023-03-05"


def test_a_new_voter_without_a_registration_date_is_a_row_error(importer, run):
    job = check(importer, run, job_id_from(upload(importer, csv_bytes([voter_line(1, registered="")]))))
    assert job.status == "invalid" and job.counts["errors"] == 1
    page = importer.get(f"/voters/imports/{job.id}").text
    assert "a new voter needs the date they registered" in page
    assert count_voters(run) == 0


def test_a_large_upload_with_csrf_on_is_accepted(app_factory, create_user, create_precinct, run):
    """A suite with CSRF switched off hid this: the CSRF check read the form under the app-wide
    16 MB limit before the upload route raised its own. Here as a browser sends it."""
    create_precinct(code="111-C")
    app = app_factory(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    user = create_user("manager")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": user.username, "password": TEST_PASSWORD, "csrf_token": token})
    page = client.get("/voters/import").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    lines = [voter_line(n) for n in range(1, 220_001)]  # about 18 MB
    data = csv_bytes(lines)
    assert len(data) > 17 * (1 << 20)
    response = client.post(
        "/voters/import",
        data={
            "csrf_token": token,
            "file": (io.BytesIO(data), "big.csv"),
            "encoding": "auto",
            "date_format": "iso",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303, response.text[:300]
    page = client.get(response.location).text
    assert "big.csv" in page


def test_cli_maps_columns_checks_then_loads_later_and_writes_every_error(app, run, tmp_path, create_precinct):
    """A state's own header ("voter_reg_num", "precinct_abbrv", ...) through --map; --check-only
    prints the job to --load later; --errors writes every reason."""
    create_precinct(code="111-C")
    renamed = HEADER.replace("Voter ID", "voter_reg_num").replace("Precinct", "precinct_abbrv")
    lines = [voter_line(n) for n in range(1, 4)]
    state = tmp_path / "state.csv"
    state.write_bytes((renamed + "\n" + "\n".join(lines) + "\n").encode())
    runner = app.test_cli_runner()
    unmapped = runner.invoke(args=["import-voters", str(state)])
    assert unmapped.exit_code == 2 and "--map FIELD=COLUMN" in unmapped.output
    checked = runner.invoke(
        args=[
            "import-voters",
            "--check-only",
            "--map",
            "state_voter_id=voter_reg_num",
            "--map",
            "precinct=8",
            str(state),
        ]
    )
    assert checked.exit_code == 0, checked.output
    job_id = int(re.search(r"import (\d+):", checked.output).group(1))
    assert f"--load {job_id}" in checked.output and "kept 24 h" in checked.output
    assert count_voters(run) == 0
    loaded = runner.invoke(args=["import-voters", "--load", str(job_id)])
    assert loaded.exit_code == 0 and "3 inserted" in loaded.output, loaded.output
    again = runner.invoke(args=["import-voters", "--load", str(job_id)])
    assert again.exit_code != 0 and "only a checked job" in again.output
    assert runner.invoke(args=["import-voters", "--map", "nope=1", str(state)]).exit_code == 2

    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes([voter_line(100 + n, dob="yesterday") for n in range(25)]))
    errors = tmp_path / "errors.csv"
    result = runner.invoke(args=["import-voters", "--errors", str(errors), str(bad)])
    assert result.exit_code == 1 and "25 refused row reason(s)" in result.output
    written = errors.read_text().splitlines()
    assert written[0] == "line,column,value,reason" and len(written) == 26


def test_a_wrong_date_format_is_fixed_and_checked_again_without_a_new_upload(importer, run):
    lines = [
        voter_line(1, dob="02/28/1980", registered="01/15/2004"),
        voter_line(2, dob="12/31/1970", registered="03/04/1999"),
    ]
    job_id = job_id_from(upload(importer, csv_bytes(lines)))
    first = check(importer, run, job_id, date_format="iso")
    assert first.status == "invalid" and first.counts["errors"] == 2
    page = importer.get(f"/voters/imports/{job_id}").text
    assert "check again (no new upload)" in page
    second = check(importer, run, job_id, date_format="us")
    assert second.status == "validated", second.message
    # And once more after a check that passed: another mapping is still possible before loading.
    third = check(importer, run, job_id, date_format="us")
    assert third.status == "validated" and third.counts["rows"] == 2
    importer.post(f"/voters/imports/{job_id}/load")
    assert wait(run, job_id).status == "loaded" and count_voters(run) == 2


def test_mapping_numbers_are_ascii_digits(importer, run):
    job_id = job_id_from(upload(importer, csv_bytes([voter_line(1)])))
    response = importer.post(
        f"/voters/imports/{job_id}/check", data={"map_state_voter_id": "²", "date_format": "iso"}
    )
    assert response.status_code == 422 and "Map the required columns" in response.text


def test_a_partial_load_takes_the_valid_rows_and_sets_the_rejected_aside_to_fix(importer, run, tmp_path):
    import csv as csvlib

    lines = [
        voter_line(1),
        voter_line(2, dob="1980-13-45"),
        voter_line(3),
        voter_line(4, last="<b>X</b>"),
        voter_line(5),
    ]
    job_id = job_id_from(upload(importer, csv_bytes(lines)))
    job = check(importer, run, job_id)
    assert job.status == "invalid" and job.counts["errors"] == 2
    # All or nothing stays the default.
    assert importer.post(f"/voters/imports/{job_id}/load").status_code == 409
    page = importer.get(f"/voters/imports/{job_id}").text
    assert "Load the 3 valid rows; set the 2 rejected aside" in page
    importer.post(f"/voters/imports/{job_id}/load", data={"partial": "1"})
    job = wait(run, job_id)
    assert job.status == "loaded" and job.counts["inserted"] == 3 and job.counts["rejected"] == 2
    assert count_voters(run) == 3
    page = importer.get(f"/voters/imports/{job_id}").text
    assert "2 rejected rows were set aside" in page
    rejected = importer.get(f"/voters/imports/{job_id}/rejected.csv")
    assert rejected.status_code == 200 and rejected.mimetype == "text/csv"
    rows = list(csvlib.reader(io.StringIO(rejected.get_data(as_text=True))))
    assert rows[0][0] == "line" and rows[0][-1] == "reasons" and [r[0] for r in rows[1:]] == ["3", "5"]
    assert "not a date" in rows[1][-1] or "plausible" in rows[1][-1]
    # Fixed, the rejected file imports again as it is (its header names the fields).
    header, fixed = rows[0], [list(r) for r in rows[1:]]
    fixed[0][header.index("date_of_birth")] = "1980-01-13"
    fixed[1][header.index("last_name")] = "Xavier"
    buffer = io.StringIO()
    csvlib.writer(buffer).writerows([header, *fixed])
    again = check(importer, run, job_id_from(upload(importer, buffer.getvalue().encode())))
    assert again.status == "validated", again.message
    importer.post(f"/voters/imports/{again.id}/load")
    assert wait(run, again.id).status == "loaded" and count_voters(run) == 5


def test_cli_partial_load(app, run, tmp_path, create_precinct):
    create_precinct(code="111-C")
    mixed = tmp_path / "mixed.csv"
    mixed.write_bytes(csv_bytes([voter_line(1), voter_line(2, dob="never"), voter_line(3)]))
    errors = tmp_path / "rejected.csv"
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["import-voters", str(mixed)])
    assert refused.exit_code == 1 and count_voters(run) == 0  # all or none by default
    result = runner.invoke(args=["import-voters", "--partial", "--errors", str(errors), str(mixed)])
    assert result.exit_code == 0, result.output
    assert "1 rows break a rule and were set aside" in result.output and "2 inserted" in result.output
    assert count_voters(run) == 2 and "line 3" in result.output
    assert len(errors.read_text().splitlines()) == 2


def test_precincts_and_parties_named_in_the_file_are_created_in_one_step(importer, run):
    from portal.models import Party, Precinct

    header = HEADER + ",Precinct Name"
    lines = [
        voter_line(1, precinct="201-A", party="UNA") + ",Maple Hall",
        voter_line(2, precinct="201-A", party="DEM") + ",Maple Hall",
        voter_line(3, precinct="202-B", party="GRE") + ",Oak Library",
        voter_line(4) + ",",
    ]
    data = (header + "\n" + "\n".join(lines) + "\n").encode()
    job_id = job_id_from(upload(importer, data))
    job = check(importer, run, job_id)
    assert job.status == "invalid" and job.counts["errors"] == 3
    page = importer.get(f"/voters/imports/{job_id}").text
    assert "Named in the file, missing in the portal" in page
    cell = '<td class="font-monospace">{}</td><td class="text-end font-monospace">{}</td>'
    assert cell.format("201-A", 2) in page and cell.format("UNA", 1) in page and cell.format("GRE", 1) in page
    response = importer.post(f"/voters/imports/{job_id}/reference")
    assert response.status_code == 303
    job = wait(run, job_id)
    assert job.status == "validated", job.message

    async def made():
        async with reading() as db:
            rows = (await db.execute(select(Precinct.code, Precinct.name))).all()
            precincts = {code: name for code, name in rows}
            parties = set((await db.scalars(select(Party.abbreviation))).all())
            return precincts, parties

    precincts, parties = run(made())
    assert precincts["201-A"] == "Maple Hall" and precincts["202-B"] == "Oak Library"
    assert {"UNA", "GRE", "DEM"} <= parties
    importer.post(f"/voters/imports/{job_id}/load")
    assert wait(run, job_id).status == "loaded" and count_voters(run) == 4


def test_cli_creates_missing_precincts_and_parties(app, run, tmp_path, create_precinct):
    create_precinct(code="111-C")
    named = tmp_path / "named.csv"
    named.write_bytes(csv_bytes([voter_line(1, precinct="301-A", party="LIB"), voter_line(2)]))
    runner = app.test_cli_runner()
    only_precincts = runner.invoke(
        args=["import-voters", "--create-missing", "precincts", "--check-only", str(named)]
    )
    assert "created 1 precincts and 0 parties" in only_precincts.output and only_precincts.exit_code == 1
    result = runner.invoke(args=["import-voters", "--create-missing", "precincts,parties", str(named)])
    assert result.exit_code == 0 and "created 0 precincts and 1 parties" in result.output, result.output
    assert count_voters(run) == 2
    assert runner.invoke(args=["import-voters", "--create-missing", "voters", str(named)]).exit_code == 2


DATE_SHAPES = {
    "iso": (re.compile(r"^(\d{4})-(\d{2})-(\d{2})$"), "ymd"),
    "us": (re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$"), "mdy"),
    "dmy": (re.compile(r"^(\d{1,2})[./](\d{1,2})[./](\d{4})$"), "dmy"),
}


def _reference_date(text_value: str, form: str) -> date | None:
    shape, order = DATE_SHAPES[form]
    found = shape.match(text_value) if text_value.isascii() else None
    if not found:
        return None
    parts = dict(zip(order, (int(g) for g in found.groups()), strict=True))
    try:
        return date(parts["y"], parts["m"], parts["d"])
    except ValueError:
        return None


def _date_samples() -> list[str]:
    samples = {"", "-", "//", "1/1/", "0000-01-01", "00/00/0000", "0/0/0000", "1.2/2020", "1.2.2020"}
    for year in (1, 1900, 1999, 2000, 2023, 2024, 2100, 9999):
        for month in (0, 1, 2, 4, 12, 13):
            for day in (0, 1, 28, 29, 30, 31, 32):
                samples |= {
                    f"{year:04d}-{month:02d}-{day:02d}",
                    f"{year:04d}-{month}-{day}",
                    f"{month}/{day}/{year:04d}",
                    f"{month:02d}/{day:02d}/{year:04d}",
                    f"{day}/{month}/{year:04d}",
                    f"{day:02d}.{month:02d}.{year:04d}",
                }
    samples |= {"2020-01-0a", "a020-01-01", "2020-01-01 ", "2020--01-1", "12/3/20201", "12//2020"}
    samples |= {"+1/2/2020", "-1/2/2020", "1/-2/2020", "2020-+1-01", "2020-01-1-", "1 /2/2020"}
    # Digits from other scripts (full-width, Arabic-Indic) are not digits here
    samples |= {"\uff11\uff12/3/2020", "\u0661/\u0662/2020", "2020-1\u0660-01"}
    # What PostgreSQL's own date input would take, and a date of this form never is
    samples |= {"2020-01- 8", "1/ 8/2020", "J2451187", "epoch", "today", "2020-01-01T", "1999-01-08 BC"}
    samples |= {
        "19990108",
        "990108",
        "1999.008",
        "Jan 8 1999",
        "08-Jan-1999",
        "1/8/99",
        "1999-1-8",
        "1/8/1999 ",
    }
    return sorted(samples)


@pytest.mark.parametrize("form", ["iso", "us", "dmy"])
def test_the_date_reader_in_sql_agrees_with_python(run, form):
    """The import reads dates in SQL without regular expressions (speed): every text gives the date
    Python reads from it, or none (never an error that fails the whole file)."""
    from portal.voters.importing import date_sql

    class Job:
        date_format = form

    ordered = _date_samples()

    async def read() -> list:
        async with reading() as db:
            return list(
                await db.scalars(
                    text(
                        f"SELECT {date_sql(Job, 'v')} FROM unnest(CAST(:v AS text[]))"
                        " WITH ORDINALITY AS s(v, i) ORDER BY i"
                    ),
                    {"v": ordered},
                )
            )

    got = run(read())
    expected = [_reference_date(v, form) for v in ordered]
    assert {v: g for v, g, e in zip(ordered, got, expected, strict=True) if g != e} == {}


@pytest.mark.parametrize("form", ["iso", "us", "dmy"])
def test_the_quick_date_cast_reads_the_same_dates_or_refuses(run, form):
    """The import first reads a part's dates with PostgreSQL's cast (a sixth of the cost), and
    reads the part again the careful way when the cast refuses one: for every text the cast
    gives the date Python reads from it, or none, or refuses it (and then Python reads none); it
    refuses no real date."""
    from portal.voters.importing.checks import DATE_STYLES, date_cast_sql

    class Job:
        date_format = form

    ordered = _date_samples()

    async def read() -> list:
        async with transaction() as db:
            await db.execute(text(f"SET LOCAL DateStyle = '{DATE_STYLES[form]}'"))
            await db.execute(
                text(
                    "CREATE FUNCTION pg_temp.quick_date(v text) RETURNS text LANGUAGE plpgsql AS $$"
                    f" BEGIN RETURN ({date_cast_sql(Job, 'v')})::text;"
                    " EXCEPTION WHEN data_exception THEN RETURN 'refused'; END $$"
                )
            )
            got = list(
                await db.scalars(
                    text(
                        "SELECT pg_temp.quick_date(v) FROM unnest(CAST(:v AS text[]))"
                        " WITH ORDINALITY AS s(v, i) ORDER BY i"
                    ),
                    {"v": ordered},
                )
            )
            await db.execute(text("DROP FUNCTION pg_temp.quick_date(text)"))
            return got

    got = dict(zip(ordered, run(read()), strict=True))
    expected = {v: _reference_date(v, form) for v in ordered}
    wrong = {
        v: g for v, g in got.items() if g != "refused" and g != (expected[v] and expected[v].isoformat())
    }
    assert wrong == {}
    assert {v for v, g in got.items() if g == "refused" and expected[v]} == set()
    assert sum(g == "refused" for g in got.values()) > 100  # (month 13, day 32, 30 February, year 0)


def test_the_file_is_cut_only_between_records(tmp_path):
    """A large file is read in parts at once; each part begins a record, even where values hold
    quoted newlines, doubled quotes and delimiters (reading the parts one after another gives the
    same records as reading the whole file)."""
    import random

    from portal.voters.importing import record_starts

    rng = random.Random(7)
    awkward = ['a "quoted" word', "line\nbreak", "comma, inside", '"', "\r\n", "plain", "", '""']
    for trial in range(30):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator=rng.choice(["\n", "\r\n"]))
        writer.writerow(["id", "note", "other"])
        for n in range(rng.randrange(1, 400)):
            writer.writerow([n, rng.choice(awkward) * rng.randrange(0, 3), rng.choice(awkward)])
        path = tmp_path / f"{trial}.csv"
        path.write_bytes(buffer.getvalue().encode())
        whole = list(csv.reader(io.StringIO(buffer.getvalue(), newline="")))
        for parts in (2, 3, 5):
            starts = record_starts(path, parts, smallest=0)
            assert starts[0] == 0 and starts == sorted(starts)
            data = path.read_bytes()
            pieces = [data[a:b] for a, b in zip(starts, [*starts[1:], len(data)], strict=True)]
            read = [row for piece in pieces for row in csv.reader(io.StringIO(piece.decode(), newline=""))]
            assert read == whole


def test_a_file_read_in_parts_names_the_right_lines(importer, run, monkeypatch):
    """Errors in the second part of a file read in parts carry the file's line numbers: row
    checks, duplicates across the parts, and a line COPY itself refuses."""
    from portal.voters.importing import staging

    monkeypatch.setattr(staging, "SPLIT_MIN_BYTES", 0)
    lines = [voter_line(n) for n in range(1, 301)]
    lines[249] = voter_line(250, vid="NC000003")  # the same ID as line 4 (the first part)
    lines[279] = voter_line(280, status="zombie")
    job_id = job_id_from(upload(importer, csv_bytes(lines)))
    job = check(importer, run, job_id)
    assert job.status == "invalid" and job.counts["rows"] == 300
    report = list(
        csv.reader(io.StringIO(importer.get(f"/voters/imports/{job_id}/issues.csv").get_data(as_text=True)))
    )
    assert ["251", "Voter ID", "NC000003", "is also on line 4"] in report
    assert ["281", "Status", "zombie", "must be active, inactive or removed"] in report

    lines = [voter_line(n) for n in range(1, 301)]
    lines[269] += ",one too many"
    job_id = job_id_from(upload(importer, csv_bytes(lines)))
    job = check(importer, run, job_id)
    assert job.status == "invalid" and job.message == "Line 271 has more columns than the header (11)."
    assert count_voters(run) == 0


def test_a_connection_lost_while_reading_the_file_is_not_called_a_bad_file(
    importer, run, monkeypatch, database_url
):
    """The server ends the COPY's connection half-way (pg_terminate_backend, as a restart does): the
    check fails as a server failure, logged, with nothing loaded, not as "could not be read as CSV";
    the next check works."""
    import asyncpg
    from sqlalchemy.engine import make_url

    from portal.voters.importing import staging

    monkeypatch.setattr(staging, "SPLIT_MIN_BYTES", 0)
    plain = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    chunks = staging._file_chunks

    async def cut_off(path, start, end, report):
        async for chunk in chunks(path, start, end, report):
            yield chunk  # (the COPY is under way on the server by now)
            killer = await asyncpg.connect(plain)
            await killer.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE query LIKE 'COPY %' AND pid <> pg_backend_pid() AND datname = current_database()"
            )
            await killer.close()

    monkeypatch.setattr(staging, "_file_chunks", cut_off)
    job_id = job_id_from(upload(importer, csv_bytes([voter_line(n) for n in range(1, 301)])))
    job = check(importer, run, job_id)
    assert job.status == "failed", (job.status, job.message)
    assert "could not be read" not in job.message and "failed on the server" in job.message
    assert count_voters(run) == 0
    monkeypatch.setattr(staging, "_file_chunks", chunks)
    job_id = job_id_from(upload(importer, csv_bytes([voter_line(n) for n in range(1, 301)])))
    assert check(importer, run, job_id).status == "validated"  # the pool has let the dead connection go
