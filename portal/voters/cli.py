"""`flask --app wsgi import-voters`: a voter file checked and loaded from the command line (the
import itself is portal/voters/importing/)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from portal import aio
from portal.cli import dispose_database
from portal.db import CommitUncertain, is_connection_failure, reading, transaction
from portal.formatting import number
from portal.voters.importing import FIELDS as IMPORT_FIELDS

LOST_DATABASE = (
    "The database could not be reached, or the connection to it was lost ({error}). Nothing was"
    " loaded: run the import again once the database answers."
)
UNCERTAIN_COMMIT = (
    "The connection to the database was lost while a change was being committed ({error}): the"
    " load may or may not have been stored. Look at the roll, or at the import's page, before"
    " running it again."
)


def _on_database(work):
    """`aio.run(work)`, a database that cannot be reached or went away told in a sentence (exit
    1), not as a traceback. Only a connection lost during a COMMIT leaves the outcome unknown."""
    try:
        return aio.run(work)
    except Exception as error:
        if not is_connection_failure(error):
            raise
        cause: BaseException | None = error
        while cause is not None and not isinstance(cause, CommitUncertain):
            cause = cause.__cause__ or cause.__context__
        original = error.orig if hasattr(error, "orig") else error
        message = UNCERTAIN_COMMIT if cause is not None else LOST_DATABASE
        raise click.ClickException(message.format(error=str(original).split(": ", 1)[-1])) from None


def _layout_title(preset: str) -> str:
    from portal.voters.layouts import LAYOUTS

    return f"{preset} ({LAYOUTS[preset].title})" if preset in LAYOUTS else f"saved preset “{preset}”"


FILE_OR_JOB = "give a FILE to import, or --load JOB_ID for a job checked earlier"


@click.command("import-voters")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--encoding", type=click.Choice(["auto", "utf-8", "latin-1"]), default="auto", show_default=True
)
@click.option(
    "--date-format",
    type=click.Choice(["iso", "us", "dmy"]),
    default=None,
    help="How the file writes dates (default: the layout's, else iso).",
)
@click.option(
    "--preset",
    default="auto",
    show_default=True,
    metavar="NAME|auto",
    help="A published layout (nc-ncvoter, oh-swvf, fl-extract, wa-vrdb) or a preset saved in the portal; "
    "auto recognises the file by its header (or, without one, by its columns).",
)
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="FIELD=COLUMN",
    help="Map a field to a column, by header name or number (1 = first); repeatable. "
    f"Fields: {', '.join(IMPORT_FIELDS)}.",
)
@click.option("--user", "username", default=None, help="The staff account the import is recorded under.")
@click.option("--check-only", is_flag=True, help="Check every row and report; load nothing (see --load).")
@click.option(
    "--partial",
    is_flag=True,
    help="Load the valid rows even when some break a rule; the rejected ones go to --errors FILE "
    "(default: all rows or none).",
)
@click.option(
    "--create-missing",
    "create_missing",
    default="",
    metavar="precincts,parties",
    help="Create the precincts and/or parties the file names but the portal lacks, then check again.",
)
@click.option(
    "--load", "load_job", type=int, default=None, metavar="JOB_ID", help="Load a job checked earlier."
)
@click.option(
    "--errors",
    "errors_file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write every refused row's reason to this CSV (line, column, value, reason).",
)
@with_appcontext
def import_voters(
    file: Path | None,
    encoding: str,
    date_format: str | None,
    preset: str,
    maps: tuple[str, ...],
    username: str | None,
    check_only: bool,
    partial: bool,
    create_missing: str,
    load_job: int | None,
    errors_file: Path | None,
) -> None:
    """Import a voter CSV: check every row, then load all of it in one transaction (or nothing).
    With --check-only the checked job is kept (a day) for a later --load JOB_ID."""
    import time

    from portal.auth.queries import get_user_by_username
    from portal.models import ImportJob
    from portal.voters import importing

    started = time.perf_counter()
    if (file is None) == (load_job is None):
        raise click.UsageError(FILE_OR_JOB)
    kinds = tuple(k.strip() for k in create_missing.split(",") if k.strip())
    if set(kinds) - {"precincts", "parties"}:
        raise click.BadParameter("precincts, parties or both", param_hint="--create-missing")

    async def actor_named(db):
        actor = await get_user_by_username(db, username) if username else None
        if username and actor is None:
            raise click.ClickException(f"no account {username}")
        return actor

    if load_job is not None:

        async def load_checked():
            async with transaction() as db:
                actor = await actor_named(db)
                job = await db.get(ImportJob, load_job)
            if job is None or job.status != "validated":
                state = job.status if job else "unknown"
                raise click.ClickException(
                    f"import {load_job} is {state}: only a checked job without errors loads"
                )
            return await importing.load_file(load_job, actor)

        try:
            loaded = _on_database(load_checked())
        finally:
            dispose_database()
        _print_loaded(loaded, started)
        return
    if file is None:  # (refused above: a FILE, or --load JOB_ID)
        raise click.UsageError(FILE_OR_JOB)

    analysis = importing.analyse(file, encoding=encoding)

    async def choose():
        async with transaction() as db:
            await importing.choose_preset(db, analysis, preset)

    if not analysis.problems:
        try:
            _on_database(choose())
        except importing.ImportFailed as failure:
            click.echo(f"{file}: {failure}", err=True)
            dispose_database()
            sys.exit(2)
    if analysis.preset:
        click.echo(f"layout: {_layout_title(analysis.preset)}")
    try:
        analysis.mapping.update(_parse_maps(maps, analysis.header))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--map") from None
    problems = analysis.problems + [
        f"no column for {label} (name one with --map FIELD=COLUMN)" for label in analysis.missing
    ]
    if problems:
        for problem in problems:
            click.echo(f"{file}: {problem}", err=True)
        sys.exit(2)

    async def run():
        async with transaction() as db:
            actor = await actor_named(db)
            job = await importing.create_job(
                db,
                actor=actor,
                filename=file.name,
                path=file,
                size=analysis.size,
                sha256=_sha256(file),
                analysis=analysis,
                date_format=date_format or "iso",
            )
            if date_format:
                job.date_format = date_format
        if not check_only:
            job, loaded = await importing.check_and_load(job.id, actor)
            if loaded is not None:
                return job, loaded
        else:
            job = await importing.check_file(job.id)
        if kinds and job.status == "invalid":
            async with transaction() as db:
                made = await importing.create_missing_reference(db, job, actor, kinds)
            if any(made):
                click.echo(
                    f"created {number(made[0])} precincts and {number(made[1])} parties named in the file"
                )
                await importing.drop_stage(job.id)
                async with transaction() as db:
                    await importing.prepare_check(
                        db, job.id, mapping=job.mapping, date_format=job.date_format
                    )
                job = await importing.check_file(job.id)
        if check_only:
            return job, None
        if job.status == "validated" or (partial and importing.partial_possible(job)):
            return job, await importing.load_file(job.id, actor, partial)
        return job, None

    try:
        checked, loaded = _on_database(run())
    finally:
        dispose_database()
    counts = checked.counts
    click.echo(f"import {checked.id}: {file.name}")
    if errors_file is not None:
        written = _write_issues(checked.id, errors_file)
        click.echo(f"{number(written)} refused row reason(s) written to {errors_file}")
    if loaded is not None and checked.status == "invalid":  # a partial load
        click.echo(f"{number(counts['errors'])} rows break a rule and were set aside, not loaded")
        _print_issues(checked.id)
        _print_loaded(loaded, started)
        return
    if checked.status != "validated":
        reason = checked.message or f"{number(counts.get('errors', 0))} rows break a rule"
        click.echo(f"NOT LOADED: {reason}", err=True)
        _print_issues(checked.id)
        if errors_file is None and counts.get("errors", 0) > 20:
            click.echo("  (the first 20; --errors FILE writes every one)", err=True)
        sys.exit(1)
    click.echo(
        f"checked {number(counts['rows'])} rows: {number(counts['new'])} new, "
        f"{number(counts['updated'])} already on the roll, "
        f"{number(counts['duplicates'])} possible duplicates, "
        f"{number(counts.get('weak_duplicates', 0))} weaker matches (name and birth year only)"
    )
    if loaded is None:
        click.echo(
            f"nothing loaded (--check-only). The checked job is kept {importing.CHECK_KEPT_HOURS} h: "
            f"load it with `flask --app wsgi import-voters --load {checked.id}`"
        )
    else:
        _print_loaded(loaded, started)


def _parse_maps(maps: tuple[str, ...], header: list[str]) -> dict[str, int]:
    """--map FIELD=COLUMN options as {field: column index}; COLUMN is a header name or 1-based."""
    chosen: dict[str, int] = {}
    names = [h.strip().lower() for h in header]
    for item in maps:
        field, _, column = item.partition("=")
        field, column = field.strip(), column.strip()
        if field not in IMPORT_FIELDS:
            raise ValueError(f"{field!r} is not a field; fields: {', '.join(IMPORT_FIELDS)}")
        if column.isascii() and column.isdigit() and 1 <= int(column) <= len(header):
            chosen[field] = int(column) - 1
        elif column.lower() in names:
            chosen[field] = names.index(column.lower())
        else:
            raise ValueError(f"no column {column!r} in the file's header")
    if len(set(chosen.values())) < len(chosen):
        raise ValueError("a column can feed only one field")
    return chosen


def _print_loaded(loaded, started: float) -> None:
    import time

    done = loaded.counts
    click.echo(
        f"loaded in {time.perf_counter() - started:.1f} s: {number(done['inserted'])} inserted, "
        f"{number(done['updated'])} updated, {number(done['unchanged'])} unchanged"
    )


def _write_issues(job_id: int, path: Path) -> int:
    from portal.csvfiles import write_csv
    from portal.voters import importing

    async def go():
        async with reading() as db:
            return await importing.issues(db, job_id, kind="error", limit=None)

    found = aio.run(go())
    write_csv(path, importing.ISSUES_CSV_HEADER, importing.issues_csv_rows(found))
    return len(found)


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _print_issues(job_id: int, limit: int = 20) -> None:
    from portal.voters import importing

    async def go():
        async with reading() as db:
            return await importing.issues(db, job_id, kind="error", limit=limit)

    for issue in aio.run(go()):
        click.echo(f"  line {issue.line}: {issue.column_name} {issue.value!r} {issue.reason}", err=True)
