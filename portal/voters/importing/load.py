"""Loading a checked file: new voters inserted and voters on the roll updated in one transaction
(all rows or none), a large load with the roll's secondary indexes and foreign keys set aside; for
a partial load, the rows that broke a rule set aside in a file of their own."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit.queries import record_event
from portal.csvfiles import write_csv
from portal.db import database, transaction
from portal.models import ImportJob, User
from portal.voters.importing.checks import _norm_table
from portal.voters.importing.fields import FIELDS
from portal.voters.importing.progress import timed
from portal.voters.queries import VOTER_FIELDS

log = logging.getLogger(__name__)

# A new voter: blank optional fields are empty (status: active). A registration date is never
# made up: the check refuses a new voter without one.
VALUES_FROM_NORM = (
    "n.state_voter_id, n.first_name, COALESCE(n.middle_name, ''), n.last_name, n.dob, n.born_year, "
    "n.address, "
    "COALESCE(n.city, ''), COALESCE(n.postal_code, ''), n.precinct_id, n.party_id, "
    "COALESCE(n.status, 'active'), n.registered, :actor"
)
# A voter on the roll: a blank in the file keeps what is stored (the file did not say), a value
# replaces it. (Required fields are never blank here: the check refuses those rows.)
UPDATED_FROM_NORM = {
    "first_name": "n.first_name",
    "middle_name": "COALESCE(n.middle_name, v.middle_name)",
    "last_name": "n.last_name",
    # A file with the year only keeps a full date on the roll from the same year.
    "date_of_birth": "COALESCE(n.dob, CASE WHEN v.birth_year = n.born_year THEN v.date_of_birth END)",
    "birth_year": "n.born_year",
    "address": "n.address",
    "city": "COALESCE(n.city, v.city)",
    "postal_code": "COALESCE(n.postal_code, v.postal_code)",
    "precinct_id": "n.precinct_id",
    "party_id": "COALESCE(n.party_id, v.party_id)",
    "status": "COALESCE(n.status, v.status)",
    "registration_date": "COALESCE(n.registered, v.registration_date)",
}
COMPARED = tuple(key for key in VOTER_FIELDS if key != "state_voter_id")  # (the ID is matched on)


BULK_MIN_ROWS = 100_000


def bulk_load(new_rows: int, roll_rows: int) -> bool:
    """A load that sets the roll's secondary indexes and foreign keys aside and rebuilds them
    (PostgreSQL's advice for populating a table: 1,000,000 new voters in 9-14 s, where writing them
    through the indexes and the foreign keys' row-by-row checks takes 36 s). Dropping a foreign key
    locks the table it points to as well, so until the load commits no one reads the roll, the
    precincts, the parties or the accounts: every signed-in page waits. Only a first load or a
    file at least the size of the roll (and 100,000 new voters) is worth that; the import page
    says so before such a load."""
    return new_rows >= BULK_MIN_ROWS and new_rows >= roll_rows


async def roll_size(db: AsyncSession) -> int:
    """The roll's size as the planner knows it (pg_class.reltuples: no count of a million rows)."""
    found = await db.scalar(
        text("SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE oid = 'voter'::regclass")
    )
    return int(found or 0)


async def _set_aside_for_bulk_load(db: AsyncSession) -> tuple[list[str], list[str]]:
    """Drop voter's secondary indexes and its foreign keys in this transaction; return the DDL
    that puts them back (read from the catalog, so it always matches the migrations)."""
    indexes = (
        await db.execute(
            text(
                "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i"
                " WHERE i.indrelid = 'voter'::regclass AND NOT i.indisprimary AND NOT i.indisunique"
            )
        )
    ).all()
    keys = (
        await db.execute(
            text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = 'voter'::regclass AND contype = 'f'"
            )
        )
    ).all()
    for name, _ in keys:
        await db.execute(text(f'ALTER TABLE voter DROP CONSTRAINT "{name}"'))
    for name, _ in indexes:
        await db.execute(text(f"DROP INDEX {name}"))
    await db.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
    return [definition for _, definition in indexes], [
        f'ALTER TABLE voter ADD CONSTRAINT "{name}" {definition}' for name, definition in keys
    ]


async def _restore_after_bulk_load(db: AsyncSession, rebuild: tuple[list[str], list[str]]) -> None:
    indexes, keys = rebuild
    for statement in [*indexes, *keys]:  # adding a foreign key checks every row once
        await db.execute(text(statement))


References = tuple[list[tuple[int, str]], list[tuple[int, str]]]  # (precincts' ids and codes, parties')


class NoFirstLoad(Exception):
    """A first load found voters on the roll, or could not take it at once (`Beside.first_load`):
    rolled back before it wrote."""


FIRST_LOAD_LOCK_WAIT = "5s"
LOCK_NOT_AVAILABLE, DEADLOCK_DETECTED = "55P03", "40P01"  # (PostgreSQL's SQLSTATEs)
ROLL_HAS_VOTERS = "SELECT EXISTS (SELECT 1 FROM voter)"
REFERENCED_TABLES = (
    "SELECT DISTINCT confrelid::regclass::text FROM pg_constraint"
    " WHERE conrelid = 'voter'::regclass AND contype = 'f' ORDER BY 1"
)


class LoadWithdrawn(Exception):
    """A load run beside its check, rolled back because the check found errors (or failed)."""


class Beside:
    """A load run beside the check of its file (the CLI's check and load in one go): it starts once
    the check has read the roll, writes while the rest of the check runs on the other core, and
    commits only when the check has passed; otherwise it is withdrawn and rolls back. Nothing is
    ever committed that the check did not pass: the same rows and the same transaction as a load
    after the check, started some seconds earlier. (A bulk load's locks, see `bulk_load`, are then
    held from its start until the check's verdict, if the check ends after the load's writes.)"""

    def __init__(self, job: ImportJob, actor: User | None) -> None:
        self.job, self.actor = job, actor
        self.verdict: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task | None = None
        self.backend_pid: int | None = None  # the load's session, while it has one
        self.waiting = False  # the load waits for the verdict (or for the next normalised part)
        self.parts: asyncio.Queue[str | None] | None = None  # a first load's normalised parts
        self.wrote_every_row = False  # a first load has written every part, not yet committed
        self.reported = False  # (a withdrawn load's end is logged once)

    def start(self, new_rows: int) -> None:
        self.task = asyncio.create_task(load(self.job, self.actor, new_rows=new_rows, beside=self))

    async def first_load(self, rows: int) -> References | None:
        """A file large enough for a bulk load (`bulk_load`) into an empty roll, the first load of
        an office's voter file: the load starts before the file is normalised and writes each part
        as soon as the check has normalised it (`normalised`), and the checks that compare the file
        with the roll are not needed. It locks the roll and the tables its keys point to, finds
        the roll empty, sets its indexes and keys aside, and returns the precincts' codes and the
        parties' abbreviations for the normalising (it holds those tables until the verdict).
        None, and no load started, if the roll has voters or another session holds one of those
        tables for FIRST_LOAD_LOCK_WAIT: the check then reads the roll before the load starts, as
        for any other file."""
        if rows < BULK_MIN_ROWS:
            return None
        opened: asyncio.Future[References | None] = asyncio.get_running_loop().create_future()
        self.parts = asyncio.Queue()
        self.task = asyncio.create_task(load_as_normalised(self.job, self.actor, self, opened))
        try:
            found = await asyncio.shield(opened)
        except BaseException:
            await self.withdraw()
            if opened.done() and not opened.cancelled():
                opened.exception()  # (retrieved: the load's own failure, logged by withdraw)
            raise
        if found is None:
            await self.task  # (rolled back: the roll was not empty, or held)
            self.task, self.parts = None, None
        return found

    def normalised(self, table: str | None) -> None:
        """A first load's next part, normalised into `table`; None: the last one was."""
        assert self.parts is not None
        self.parts.put_nowait(table)

    async def next_part(self) -> str | None:
        assert self.parts is not None
        self.waiting = True
        try:
            return await self.parts.get()
        finally:
            self.waiting = False

    def still_wanted(self, *_: object) -> None:
        """Before each of the load's statements (a cursor-execute listener): none runs once withdrawn."""
        if self.verdict.done() and not self.verdict.result():
            raise LoadWithdrawn

    async def may_commit(self) -> None:
        self.waiting = True
        try:
            if not await asyncio.shield(self.verdict):
                raise LoadWithdrawn
        finally:
            self.waiting = False

    async def commit(self) -> dict[str, int]:
        """The check passed: let the load commit, and wait for it."""
        assert self.task is not None
        self.verdict.set_result(True)
        return await self.task

    async def withdraw(self) -> None:
        """The check found errors or failed (or the job was refused): stop the load and roll it back."""
        if self.task is None:
            return
        if not self.verdict.done():
            self.verdict.set_result(False)  # (no further statement of the load starts)
        if self.parts is not None:
            self.parts.put_nowait(None)  # (a first load waiting for its next part goes on, and stops)
        while not self.task.done():
            # The statement running now is cancelled. A cancel that reaches the session between
            # two statements is ignored by PostgreSQL, so it is sent again until the load has
            # ended (never once it has: `backend_pid` is cleared when its session is given back).
            if self.backend_pid is not None and not self.waiting:
                try:
                    async with database().engine.connect() as conn:
                        await conn.execute(text("SELECT pg_cancel_backend(:pid)"), {"pid": self.backend_pid})
                except Exception as error:  # (the database restarting: tried again, the load cannot commit)
                    log.warning("import %s: could not cancel the load's statement: %s", self.job.id, error)
            await asyncio.wait({self.task}, timeout=0.5)
        if self.reported:
            return
        self.reported = True
        try:
            self.task.result()
        except Exception as error:  # (LoadWithdrawn, or the cancelled statement's error)
            log.info(
                "import %s: the load beside the check was withdrawn (%s)", self.job.id, type(error).__name__
            )


@asynccontextmanager
async def _watched_by(beside: Beside | None, db: AsyncSession) -> AsyncIterator[None]:
    """For a load beside its check: its session known to `withdraw` (to cancel a statement), and
    every statement it sends checked against the verdict first."""
    if beside is None:
        yield
        return
    connection = (await db.connection()).sync_connection
    assert connection is not None
    beside.backend_pid = await db.scalar(text("SELECT pg_backend_pid()"))
    event.listen(connection, "before_cursor_execute", beside.still_wanted)
    try:
        yield
    finally:
        event.remove(connection, "before_cursor_execute", beside.still_wanted)
        beside.backend_pid = None


async def load(
    job: ImportJob,
    actor: User | None,
    *,
    rejected: int = 0,
    new_rows: int | None = None,
    beside: Beside | None = None,
) -> dict[str, int]:
    """Insert new voters and update existing ones in one transaction; all rows or none. `new_rows`
    (by default the check's count) decides a bulk load; `beside`: a load run beside its check."""
    norm = _norm_table(job.id)
    assert list(UPDATED_FROM_NORM) == list(COMPARED)
    plain_insert = f"""
        INSERT INTO voter ({", ".join(VOTER_FIELDS)}, updated_by_id)
        SELECT {VALUES_FROM_NORM} FROM {norm} n"""
    # Updates first (only rows that really change get a new version), then the new voters. The
    # load holds the roll's rows it writes; a voter added meanwhile by someone else with the same
    # ID makes the INSERT fail, and then nothing is loaded.
    update = f"""
        WITH written AS (
            UPDATE voter v SET {", ".join(f"{c} = {e}" for c, e in UPDATED_FROM_NORM.items())},
                version = v.version + 1, updated_at = now(), updated_by_id = :actor
            FROM {norm} n
            WHERE v.state_voter_id = n.state_voter_id
              AND ({", ".join("v." + c for c in COMPARED)})
                  IS DISTINCT FROM ({", ".join(UPDATED_FROM_NORM.values())})
            RETURNING 1
        )
        SELECT count(*) FROM written"""
    insert_new = f"""{plain_insert}
        WHERE NOT EXISTS (SELECT 1 FROM voter v WHERE v.state_voter_id = n.state_voter_id)"""
    actor_id = {"actor": actor.id if actor else None}
    async with transaction() as db, _watched_by(beside, db):
        if new_rows is None:
            new_rows = job.counts.get("new", 0)
        roll = await roll_size(db)
        with timed(job.id, "setting indexes aside"):
            rebuild = await _set_aside_for_bulk_load(db) if bulk_load(new_rows, roll) else None
        # Under the bulk load's exclusive lock nobody can add a voter meanwhile: if no ID in the
        # file is on the roll, a plain INSERT does without ON CONFLICT's speculative insertion.
        overlap = rebuild is None or await db.scalar(
            text(f"SELECT EXISTS (SELECT 1 FROM {norm} JOIN voter USING (state_voter_id))")
        )
        with timed(job.id, "writing the roll"):
            if overlap:
                updated = await db.scalar(text(update), actor_id)
                # An INSERT's result is a CursorResult; AsyncSession.execute is typed Result.
                inserted = (await db.execute(text(insert_new), actor_id)).rowcount  # type: ignore[attr-defined]
            else:
                plain = await db.execute(text(plain_insert), actor_id)
                inserted, updated = plain.rowcount, 0  # type: ignore[attr-defined]  # (as above)
        return await _written(db, job, actor, rebuild, inserted, updated, rejected, beside)


async def _written(
    db: AsyncSession,
    job: ImportJob,
    actor: User | None,
    rebuild: tuple[list[str], list[str]] | None,
    inserted: int,
    updated: int,
    rejected: int,
    beside: Beside | None,
) -> dict[str, int]:
    """The end of a load, in its transaction: the indexes and keys set aside put back, the counts,
    the audit event; beside the check, the wait for its verdict."""
    if rebuild:
        with timed(job.id, "rebuilding indexes and foreign keys"):
            await _restore_after_bulk_load(db, rebuild)
    total = await db.scalar(text(f"SELECT count(*) FROM {_norm_table(job.id)}"))
    counts = {
        "rows": total,
        "inserted": inserted,
        "updated": updated,
        "unchanged": total - inserted - updated,
    }
    await record_event(
        db,
        actor=actor,
        action="import",
        entity="voter",
        entity_id=f"import-{job.id}",
        after={"file": job.filename, "sha256": job.sha256, **counts, "rejected": rejected},
    )
    if beside:
        with timed(job.id, "waiting for the check"):
            await beside.may_commit()
    return counts


@asynccontextmanager
async def _held_elsewhere() -> AsyncIterator[None]:
    """A lock a first load could not take in time (or a deadlock over one): no first load."""
    try:
        yield
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) in (LOCK_NOT_AVAILABLE, DEADLOCK_DETECTED):
            raise NoFirstLoad from error
        raise


async def load_as_normalised(
    job: ImportJob, actor: User | None, beside: Beside, opened: asyncio.Future[References | None]
) -> dict[str, int]:
    """A first load (`Beside.first_load`): `opened` gets the precincts and parties once the roll is
    held (or None: it was not empty), then each normalised part is written as it comes."""
    insert = f"""
        INSERT INTO voter ({", ".join(VOTER_FIELDS)}, updated_by_id)
        SELECT {VALUES_FROM_NORM} FROM {{part}} n"""
    actor_id = {"actor": actor.id if actor else None}
    roll_has_voters = text(ROLL_HAS_VOTERS)
    try:
        async with database().engine.connect() as conn, _held_elsewhere():  # (a look holding nothing)
            await conn.execute(text(f"SET LOCAL lock_timeout = '{FIRST_LOAD_LOCK_WAIT}'"))
            if await conn.scalar(roll_has_voters):
                raise NoFirstLoad
        async with transaction() as db, _watched_by(beside, db):
            # The roll and every table its foreign keys point to, at once (the bulk load's DROP
            # CONSTRAINTs would lock them one by one). A session holding one of them holds the
            # load back at most FIRST_LOAD_LOCK_WAIT; then the file is checked and loaded the
            # usual way, whose load waits for it beside the check.
            tables = ", ".join(["voter", *await db.scalars(text(REFERENCED_TABLES))])
            await db.execute(text(f"SET LOCAL lock_timeout = '{FIRST_LOAD_LOCK_WAIT}'"))
            async with _held_elsewhere():
                await db.execute(text(f"LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE"))
            await db.execute(text("SET LOCAL lock_timeout = DEFAULT"))
            if await db.scalar(roll_has_voters):  # (a voter added before the lock was taken)
                raise NoFirstLoad
            with timed(job.id, "setting indexes aside"):
                rebuild = await _set_aside_for_bulk_load(db)
            precincts = (await db.execute(text("SELECT id, code FROM precinct"))).all()
            parties = (await db.execute(text("SELECT id, abbreviation FROM party"))).all()
            opened.set_result(([tuple(p) for p in precincts], [tuple(p) for p in parties]))
            inserted = 0
            with timed(job.id, "writing the roll (each part as soon as it was normalised)"):
                while (part := await beside.next_part()) is not None:
                    written = await db.execute(text(insert.format(part=part)), actor_id)
                    inserted += written.rowcount  # type: ignore[attr-defined]  # (a CursorResult)
            beside.wrote_every_row = not beside.verdict.done()  # (withdrawn: the parts stopped early)
            return await _written(db, job, actor, rebuild, inserted, 0, 0, beside)
    except NoFirstLoad:
        opened.set_result(None)
        return {}
    except BaseException as error:
        if not opened.done():
            if isinstance(error, asyncio.CancelledError):
                opened.cancel()
            else:
                opened.set_exception(error)
        raise


def rejected_path(job_id: int) -> Path:
    from flask import current_app

    return Path(current_app.instance_path) / "imports" / f"rejected-{int(job_id)}.csv"


async def set_rejected_aside(job: ImportJob) -> int:
    """For a partial load: write the rows that broke a rule, with their reasons, to a CSV that can be
    fixed and imported again (formula-safe), and take them out of the rows to load."""
    norm = _norm_table(job.id)
    columns = [key for key in FIELDS if key in job.mapping]
    async with database().engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    f"SELECT n.line, {', '.join('n.' + c for c in columns)}, r.reasons FROM {norm} n "
                    "JOIN (SELECT line, string_agg(column_name || ' ' || reason, '; ' ORDER BY id) "
                    "AS reasons FROM import_issue WHERE job_id = :job AND kind = 'error' GROUP BY line) r "
                    "USING (line) ORDER BY n.line"
                ),
                {"job": job.id},
            )
        ).all()
        path = rejected_path(job.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_csv(path, ["line", *columns, "reasons"], rows)
        await conn.execute(
            text(
                f"DELETE FROM {norm} WHERE line IN "
                "(SELECT line FROM import_issue WHERE job_id = :job AND kind = 'error')"
            ),
            {"job": job.id},
        )
        await conn.commit()
    return len(rows)
