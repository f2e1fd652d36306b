"""The import job: the upload saved, the `import_job` row (created, read, moved on), its issues,
its scratch tables dropped and expired, and the check and the load run as background jobs."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from portal.db import database, is_connection_failure, transaction
from portal.errors import NotFound
from portal.models import ImportIssue, ImportJob, User
from portal.voters.importing.checks import _lookup_tables, _norm_table, drop_tables, validate
from portal.voters.importing.fields import ImportFailed
from portal.voters.importing.load import ROLL_HAS_VOTERS, Beside, load, set_rejected_aside
from portal.voters.importing.progress import Progress, timed
from portal.voters.importing.sniff import Analysis
from portal.voters.importing.staging import LOAD_PARTS, STAGE_PARTS, _stage_tables, stage

log = logging.getLogger(__name__)


RUNNING = ("staging", "validating", "loading")
STALE_AFTER_SECONDS = 120


def save_upload(stream, destination: Path, limit: int) -> tuple[int, str]:
    """Copy an upload to disk in 1 MiB pieces (constant memory); (bytes, sha256). Over `limit`: refused."""
    digest = hashlib.sha256()
    written = 0
    destination.parent.mkdir(parents=True, exist_ok=True)
    with destination.open("wb") as out:
        while chunk := stream.read(1 << 20):
            written += len(chunk)
            if written > limit:
                out.close()
                destination.unlink(missing_ok=True)
                raise ImportFailed(f"The file is larger than the limit of {limit // (1 << 20)} MB.")
            digest.update(chunk)
            out.write(chunk)
    return written, digest.hexdigest()


SCRATCH_PATTERN = r"^import_(stage|norm|precincts|parties)_\d+(_\d+)?$"
CHECK_KEPT_HOURS = 24


STOPPED = "The import stopped (the server restarted). Nothing was loaded."


async def expire_old_checks(session: AsyncSession) -> int:
    """A checked file that was never loaded keeps a scratch table; after a day it expires. So do
    the scratch tables of a check or load cut off by a database restart, which could neither
    record its end nor drop them: a day without a heartbeat (a running import beats every part)."""
    expired: list[int] = []
    for statuses, message in (
        (("validated", "invalid"), "The check expired after a day without loading. Nothing was loaded."),
        (RUNNING, STOPPED),
    ):
        expired += await session.scalars(
            update(ImportJob)
            .where(
                ImportJob.status.in_(statuses),
                ImportJob.heartbeat_at < func.now() - timedelta(hours=CHECK_KEPT_HOURS),
            )
            .values(status="failed", message=message)
            .returning(ImportJob.id)
        )
    for job_id in expired:
        await session.execute(text(f"DROP TABLE IF EXISTS {_norm_table(job_id)}"))
        for table in [*_stage_tables(job_id), *_lookup_tables(job_id)]:
            await session.execute(text(f"DROP TABLE IF EXISTS {table}"))
    return len(expired)


async def create_job(
    session: AsyncSession,
    *,
    actor: User | None,
    filename: str,
    path: Path,
    size: int,
    sha256: str,
    analysis: Analysis,
    date_format: str = "iso",
) -> ImportJob:
    """The job for an analysed upload (a recognised layout's date format wins over `date_format`)."""
    await expire_old_checks(session)
    job = ImportJob(
        created_by_id=actor.id if actor else None,
        filename=filename[:255],
        path=str(path),
        size_bytes=size,
        sha256=sha256,
        encoding=analysis.encoding,
        delimiter=analysis.delimiter,
        header=analysis.header,
        mapping=analysis.mapping,
        has_header=analysis.has_header,
        preset=analysis.preset,
        codes=analysis.codes,
        date_format=analysis.date_format or date_format,
        status="uploaded",
    )
    session.add(job)
    await session.flush()
    return job


async def get_job(session: AsyncSession, job_id: int) -> ImportJob | None:
    job = await session.get(ImportJob, job_id)
    if job is None:
        return None
    beat = job.heartbeat_at
    stale = beat is not None and (datetime.now(UTC) - beat).total_seconds() > STALE_AFTER_SECONDS
    if stale and job.status in RUNNING:
        job.status, job.message = "failed", STOPPED
    return job


async def find_job(session: AsyncSession, job_id: int) -> ImportJob:
    """The job, or NotFound (a day after its check, a job and its rows are gone)."""
    job = await session.get(ImportJob, job_id)
    if job is None:
        raise NotFound("import")
    return job


async def prepare_check(
    session: AsyncSession, job_id: int, *, mapping: dict[str, int], date_format: str
) -> None:
    """Record the chosen mapping and date format; the job waits for its check to start."""
    await session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id)
        .values(mapping=mapping, date_format=date_format, status="staging", counts={}, message="", progress=0)
    )


async def mark_loading(session: AsyncSession, job_id: int) -> None:
    await session.execute(
        update(ImportJob).where(ImportJob.id == job_id).values(status="loading", phase="Starting")
    )


async def issues(
    session: AsyncSession, job_id: int, *, kind: str, limit: int | None = 200
) -> list[ImportIssue]:
    query = select(ImportIssue).where(ImportIssue.job_id == job_id, ImportIssue.kind == kind)
    query = query.order_by(ImportIssue.line, ImportIssue.id)
    return list((await session.scalars(query.limit(limit) if limit else query)).all())


async def drop_stage(job_id: int) -> None:
    await drop_tables([*_stage_tables(job_id), *_lookup_tables(job_id), _norm_table(job_id)])


async def _check_ended(
    job_id: int, progress: Progress, beside: Beside | None, status: str, message: str
) -> None:
    """A check that did not pass to its end: the load beside it withdrawn (before the scratch tables
    it reads are dropped), the scratch tables dropped, the job's status and message."""
    if beside:
        await beside.withdraw()
    await drop_stage(job_id)
    await progress(
        status=status, phase="", progress=1.0, message=message, finished_at=datetime.now(UTC), force=True
    )


async def check_file(job_id: int, *, beside: Beside | None = None) -> ImportJob:
    """Stage and validate: the job ends "validated" (ready to load) or "invalid" (nothing loaded).
    `beside`: the CLI's load, started once the roll has been read (or, a first load, before the
    normalising), withdrawn unless the check passes."""
    progress = Progress(job_id)
    async with transaction() as db:
        job = await find_job(db, job_id)
    started = datetime.now(UTC)
    await progress(status="staging", phase="Reading the file", progress=0.0, started_at=started, force=True)
    try:
        with timed(job_id, "staging"):
            # (beside a load, in parts small enough for a first load to start on the first)
            parts = await stage(job, progress, LOAD_PARTS if beside else STAGE_PARTS)
        if sum(part.rows for part in parts) == 0:
            raise ImportFailed("The file has a header but no voter rows.")
        counts = await validate(job, progress, parts, alongside=beside)
    except ImportFailed as failure:
        await _check_ended(job_id, progress, beside, "invalid", str(failure))
    except Exception as error:
        if is_connection_failure(error):  # (a restart: no traceback to read, the cause is known)
            log.warning("import %s: the check lost the database: %s", job_id, error.__class__.__name__)
        else:
            log.exception("import %s: the check failed", job_id)
        message = f"The check failed on the server (logged as import {job_id}). Nothing was loaded."
        await _check_ended(job_id, progress, beside, "failed", message)
        raise
    except asyncio.CancelledError:  # (the CLI stopped with Ctrl-C)
        await _check_ended(job_id, progress, beside, "failed", "The check was stopped. Nothing was loaded.")
        raise
    else:
        status = "invalid" if counts["errors"] else "validated"
        if beside and status == "invalid":
            await beside.withdraw()
        # (With row errors the checked rows are kept too, for a day: the user may load the valid
        # rows and take the rejected ones away to fix.)
        await progress(
            status=status,
            phase="",
            progress=1.0 if status == "invalid" else 0.8,
            counts=counts,
            rows_done=counts["rows"],
            force=True,
        )
    async with transaction() as db:
        return await find_job(db, job_id)


async def _roll_has_voters() -> bool:
    async with transaction() as db:
        return bool(await db.scalar(text(ROLL_HAS_VOTERS)))


def partial_possible(job: ImportJob) -> bool:
    """A checked file with row errors (not a file-level failure) whose rows are still kept."""
    errors, rows = job.counts.get("errors", 0), job.counts.get("rows", 0)
    return job.status == "invalid" and 0 < errors < rows


async def check_and_load(job_id: int, actor: User | None) -> tuple[ImportJob, ImportJob | None]:
    """Check a file and, if it passes, load it (the CLI's default): the load runs beside the check
    (`Beside`) and commits only once the check has passed. (The checked job, the loaded job or None.)"""
    async with transaction() as db:
        job = await find_job(db, job_id)
    beside = Beside(job, actor)
    try:
        checked = await check_file(job_id, beside=beside)
    except BaseException:
        await beside.withdraw()
        raise
    if checked.status != "validated":
        await beside.withdraw()
        return checked, None
    try:
        return checked, await load_file(job_id, actor, beside=beside)
    finally:
        if not beside.verdict.done():  # (load_file refused the job before letting it commit)
            await beside.withdraw()


async def load_file(
    job_id: int, actor: User | None, partial: bool = False, *, beside: Beside | None = None
) -> ImportJob:
    """Load a validated job (one transaction) and tidy up. `partial`: a job with row errors loads
    its valid rows, and the rejected ones go to a file of their own for review. `beside`: the load
    already started beside the check, now allowed to commit."""
    progress = Progress(job_id)
    async with transaction() as db:
        job = await find_job(db, job_id)
    allowed = ("validated", "invalid", "loading") if partial else ("validated", "loading")
    if job.status not in allowed or (job.status == "invalid" and not partial_possible(job)):
        raise ImportFailed(f"This import is {job.status}; only a checked file can be loaded.")
    await progress(status="loading", phase="Writing the roll (one transaction)", progress=0.85, force=True)
    if beside is None and job.counts.get("checked_on_empty_roll") and await _roll_has_voters():
        # Checked beside a first load, which held the roll empty: the file was not compared with
        # the voters on it now (possible duplicates, updates), so it is checked again first.
        message = (
            "Voters have been added to the roll since this file was checked against an empty roll."
            " Check the file again before loading it."
        )
        checked = "invalid" if job.counts.get("errors") else "validated"
        await progress(status=checked, phase="", message=message, force=True)
        raise ImportFailed(message)
    rejected = 0
    try:
        if partial and job.counts.get("errors"):
            rejected = await set_rejected_aside(job)
        with timed(job_id, "the load (one transaction)"):
            counts = await (beside.commit() if beside else load(job, actor, rejected=rejected))
    except Exception as error:
        log.exception("import %s: the load failed", job_id)
        message = f"Nothing was loaded: the load failed on the server (logged as import {job_id})."
        await progress(
            status="failed",
            phase="",
            progress=1.0,
            finished_at=datetime.now(UTC),
            force=True,
            message=message,
        )
        await drop_stage(job_id)
        raise ImportFailed(message) from error
    await drop_stage(job_id)
    # The planner's statistics, and after a load that only added voters a VACUUM too: until the
    # roll's new pages are marked all-visible, its searches are not index-only and their first
    # reads write hint bits (a name-prefix search with a status: 56 ms, then 9.7 ms, against 1.2 ms
    # after it; VACUUM took 0.23 s more than ANALYZE at 1,000,000 new voters). After updates it
    # would also sweep every index of the roll: autovacuum does that later.
    tidy = "VACUUM (ANALYZE) voter" if counts["inserted"] and not counts["updated"] else "ANALYZE voter"
    with timed(job_id, tidy):
        async with database().engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(tidy))
    _discard_upload(Path(job.path))
    await progress(
        status="loaded",
        phase="",
        progress=1.0,
        counts={**job.counts, **counts, "rejected": rejected},
        finished_at=datetime.now(UTC),
        force=True,
    )
    async with transaction() as db:
        return await find_job(db, job_id)


def _discard_upload(path: Path) -> None:
    """Delete a loaded upload, but only our own copy under instance/imports (never a CLI user's file)."""
    from flask import current_app

    uploads = (Path(current_app.instance_path) / "imports").resolve()
    if path.resolve().parent == uploads:
        path.unlink(missing_ok=True)


ISSUES_CSV_HEADER = ("line", "column", "value", "reason")


def issues_csv_rows(found: list[ImportIssue]) -> list[list[str]]:
    """The issues as rows under ISSUES_CSV_HEADER (written formula-safe by portal.csvfiles)."""
    return [[str(i.line), i.column_name, i.value, i.reason] for i in found]


def start(app, step, *args) -> None:
    """Run `step(*args)` (check_file or load_file) as a background job with the app context."""
    import logging

    from portal import aio

    async def job():
        with app.app_context():
            try:
                await step(*args)
            except ImportFailed:
                pass  # recorded on the job
            except Exception:
                logging.getLogger(__name__).exception("voter import %s failed", args[:1])

    aio.run_detached(job())
