"""Voter-file import: analyse, stage with COPY, validate in SQL, load in one transaction.

1. `analyse()` reads the head of the uploaded file: encoding (UTF-8 with or without BOM, else
   Latin-1), delimiter, header, a suggested column mapping and a preview.
2. `stage()` streams the file into an UNLOGGED all-text table with PostgreSQL COPY (asyncpg),
   in constant memory; `line` numbers the records (the header is line 1).
3. `validate()` checks every row set-wise in SQL and writes each failure (line, column, value,
   reason) and each likely duplicate to `import_issue`; counts new and updated voters.
4. `load()` inserts and updates the roll in one transaction (INSERT .. ON CONFLICT), or nothing.
Progress lives in the `import_job` row, so it survives a reload and any worker can show it.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import hashlib
import io
import logging
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from portal import clock
from portal.audit.queries import record_event
from portal.db import database, transaction
from portal.formatting import number
from portal.inputs import NAME_FORBIDDEN_SQL, NAME_RULE
from portal.models import ImportIssue, ImportJob, User
from portal.voters.layouts import (
    LAYOUTS,
    Layout,
    headerless_layout,
    mapping_by_name,
    preset_fits,
    recognise,
    saved_presets,
)
from portal.voters.layouts import normalised as _normalise

log = logging.getLogger(__name__)


@contextmanager
def timed(job_id: int, phase: str):
    """Log how long a phase of an import took (INFO: where an import's time goes)."""
    began = time.perf_counter()
    yield
    log.info("import %s: %s took %.2f s", job_id, phase, time.perf_counter() - began)


@dataclass(frozen=True)
class Field:
    label: str
    required: bool
    synonyms: tuple[str, ...]
    max_length: int = 0


FIELDS: dict[str, Field] = {
    "state_voter_id": Field(
        "State voter ID",
        True,
        (
            "state_voter_id",
            "voter_id",
            "voterid",
            "state_id",
            "sos_voterid",
            "id",
            "voter_number",
            "registration_number",
        ),
        20,
    ),
    "last_name": Field("Last name", True, ("last_name", "lastname", "surname", "family_name", "last"), 80),
    "first_name": Field("First name", True, ("first_name", "firstname", "given_name", "first"), 80),
    "middle_name": Field("Middle name", False, ("middle_name", "middlename", "middle", "middle_initial"), 80),
    # One of the two is needed: many states publish the birth year only.
    "date_of_birth": Field(
        "Date of birth", False, ("date_of_birth", "dob", "birth_date", "birthdate", "born"), 10
    ),
    "birth_year": Field(
        "Birth year", False, ("birth_year", "birthyear", "year_of_birth", "yob", "birth_yr"), 4
    ),
    "address": Field(
        "Address",
        True,
        ("address", "street_address", "residence_address", "street", "address_1", "address1"),
        200,
    ),
    "city": Field("City", False, ("city", "town", "residence_city"), 80),
    "postal_code": Field("Postal code", False, ("postal_code", "zip", "zip_code", "zipcode", "postcode"), 10),
    "precinct": Field("Precinct", True, ("precinct", "precinct_code", "precinct_id", "pct"), 16),
    "party": Field("Party", False, ("party", "party_code", "party_affiliation", "affiliation"), 10),
    # Only read to name precincts created from the file (the roll keeps the precinct, not its name).
    "precinct_name": Field(
        "Precinct name (for new precincts)",
        False,
        ("precinct_name", "precinct_desc", "precinct_description"),
        120,
    ),
    "status": Field("Status", False, ("status", "voter_status"), 16),
    "registration_date": Field(
        "Registration date",
        False,
        ("registration_date", "reg_date", "registered", "registration", "date_registered"),
        10,
    ),
}
NAME_FIELDS = ("last_name", "first_name", "middle_name")
DATE_FORMATS = {"iso": "YYYY-MM-DD", "us": "MM/DD/YYYY", "dmy": "DD/MM/YYYY"}
HEAD_BYTES = 256 * 1024
MAX_COLUMNS = 500  # (states publish up to ~100; PostgreSQL stops at 1,600)
RUNNING = ("staging", "validating", "loading")
STALE_AFTER_SECONDS = 120


class ImportFailed(Exception):
    """The file cannot be imported as it is (the message says why, with the line when known)."""


@dataclass
class Analysis:
    size: int
    encoding: str = "utf-8"
    delimiter: str = ","
    header: list[str] = field(default_factory=list)
    preview: list[list[str]] = field(default_factory=list)
    mapping: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    has_header: bool = True
    first_row: list[str] = field(default_factory=list)
    date_format: str = ""  # from a recognised layout
    preset: str = ""  # the layout or saved preset that mapped the file
    codes: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        return missing_fields(self.mapping)


BIRTH = ("date_of_birth", "birth_year")


def missing_fields(mapping: dict) -> list[str]:
    """The labels of the required fields a mapping leaves out (a date of birth or a birth year)."""
    missing = [FIELDS[f].label for f, spec in FIELDS.items() if spec.required and f not in mapping]
    if not any(key in mapping for key in BIRTH):
        missing.append("Date of birth or birth year")
    return missing


def suggest_mapping(header: list[str]) -> dict[str, int]:
    names = [_normalise(h) for h in header]
    mapping: dict[str, int] = {}
    for key, spec in FIELDS.items():
        for synonym in spec.synonyms:
            if synonym in names and names.index(synonym) not in mapping.values():
                mapping[key] = names.index(synonym)
                break
    return mapping


def analyse(path: Path, *, encoding: str = "auto") -> Analysis:
    """Look at the head of the file: what it is, how it maps, what it starts with."""
    size = path.stat().st_size
    analysis = Analysis(size=size)
    if size == 0:
        analysis.problems.append("The file is empty.")
        return analysis
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    if b"\x00" in head:
        analysis.problems.append("This is not a CSV text file: it contains binary data.")
        return analysis
    if encoding == "auto":
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) == size)
            encoding = "utf-8"
        except UnicodeDecodeError:
            encoding = "latin-1"
    analysis.encoding = encoding
    try:
        decoded = head.decode(
            "utf-8-sig" if encoding == "utf-8" else "latin-1",
            errors="strict" if len(head) == size else "ignore",
        )
    except UnicodeDecodeError as error:
        analysis.problems.append(
            f"The file is not UTF-8 text ({error.reason} at byte {error.start}): choose Latin-1."
        )
        return analysis
    if len(head) < size and "\n" in decoded:
        decoded = decoded[: decoded.rindex("\n") + 1]  # whole records only
    first_line = decoded.splitlines()[0] if decoded.strip() else ""
    counts = {d: first_line.count(d) for d in (",", ";", "\t", "|")}
    analysis.delimiter = max(counts, key=counts.get)
    # newline="": the csv module then ends records at CR, LF or CRLF (classic Mac files too).
    reader = csv.reader(io.StringIO(decoded, newline=""), delimiter=analysis.delimiter)
    try:
        rows = list(reader)
    except csv.Error as error:
        if "field larger than field limit" in str(error):
            reason = f"a value is longer than {csv.field_size_limit() // 1024} KiB"
        else:
            reason = "a line break stands inside a value that is not in quotes"
        analysis.problems.append(
            f"Line {reader.line_num} could not be read as CSV: {reason}. This is not a voter file, "
            "or it was damaged; export it again."
        )
        return analysis
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        analysis.problems.append("The file has no header row.")
        return analysis
    if len(rows[0]) > MAX_COLUMNS:
        analysis.problems.append(
            f"The file has {number(len(rows[0]))} columns; a voter file has at most {MAX_COLUMNS}."
        )
        return analysis
    analysis.first_row = rows[0]
    layout = headerless_layout(rows[0])
    if layout:
        use_layout(analysis, layout)
        analysis.preview = [[c[:80] for c in r] for r in rows[:5]]
        return analysis
    analysis.header = [h.strip()[:80] for h in rows[0]]
    analysis.preview = [[c[:80] for c in r] for r in rows[1:6]]
    if len(analysis.header) < 3:
        analysis.problems.append(
            f"The file has {len(analysis.header)} column(s): it is not a voter file, or its values are not "
            "separated by commas, semicolons, tabs or bars."
        )
        return analysis
    seen: dict[str, int] = {}
    for n, name in enumerate(analysis.header, start=1):
        if _normalise(name) in seen:
            analysis.problems.append(f"Columns {seen[_normalise(name)]} and {n} have the same name “{name}”.")
        seen[_normalise(name)] = n
    recognised = recognise(analysis.header)
    if recognised:
        use_layout(analysis, recognised[0])
    else:
        analysis.mapping = suggest_mapping(analysis.header)
    if len(rows) == 1 and len(head) == size:
        analysis.problems.append("The file has a header but no voter rows.")
    return analysis


def use_layout(analysis: Analysis, layout: Layout) -> None:
    """Map the file by a published layout: fields, date format, code lists (a layout without a
    header gives the file its column names)."""
    if not layout.has_header:
        if len(analysis.first_row) != len(layout.columns):
            raise ImportFailed(
                f"The file has {len(analysis.first_row)} columns; "
                f"the {layout.title} has {len(layout.columns)}."
            )
        analysis.header = list(layout.columns)
    analysis.has_header = layout.has_header
    analysis.mapping = mapping_by_name(analysis.header, layout.fields) or {}
    missing = missing_fields(analysis.mapping)
    if missing:
        raise ImportFailed(f"The file lacks the {layout.title}'s columns for: {', '.join(missing)}.")
    analysis.date_format, analysis.codes, analysis.preset = layout.date_format, layout.codes, layout.key


async def choose_preset(session: AsyncSession, analysis: Analysis, name: str = "auto") -> None:
    """`auto`: a saved preset that fits the file wins over the published layout recognised by
    `analyse` (it is this office's own); otherwise the name of a published layout or a saved
    preset, which must fit. Raises ImportFailed when the named one does not."""
    presets = await saved_presets(session)
    if name == "auto":
        fitting = [(p, m) for p in presets if (m := preset_fits(p, analysis.header)) is not None]
        if fitting:
            preset, mapping = max(fitting, key=lambda pm: len(pm[1]))
            analysis.mapping, analysis.preset = mapping, preset.name
            analysis.date_format, analysis.codes = preset.date_format, preset.codes
        return
    if name in LAYOUTS:
        use_layout(analysis, LAYOUTS[name])
        return
    preset = next((p for p in presets if p.name == name), None)
    if preset is None:
        known = ", ".join([*LAYOUTS, *(p.name for p in presets)])
        raise ImportFailed(f"There is no preset “{name}”. Presets: {known}.")
    mapping = preset_fits(preset, analysis.header)
    if mapping is None:
        raise ImportFailed(f"The file lacks columns the preset “{name}” names.")
    analysis.mapping, analysis.preset = mapping, preset.name
    analysis.date_format, analysis.codes = preset.date_format, preset.codes


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


# The job ------------------------------------------------------------------------------------------


SCRATCH_PATTERN = r"^import_(stage|norm)_\d+$"
CHECK_KEPT_HOURS = 24


async def expire_old_checks(session: AsyncSession) -> int:
    """A checked file that was never loaded keeps a scratch table; after a day it expires."""
    expired = list(
        await session.scalars(
            update(ImportJob)
            .where(
                ImportJob.status.in_(("validated", "invalid")),
                ImportJob.heartbeat_at < func.now() - timedelta(hours=CHECK_KEPT_HOURS),
            )
            .values(
                status="failed", message="The check expired after a day without loading. Nothing was loaded."
            )
            .returning(ImportJob.id)
        )
    )
    for job_id in expired:
        await session.execute(text(f"DROP TABLE IF EXISTS {_norm_table(job_id)}"))
        for table in _stage_tables(job_id):
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
    beat = job.heartbeat_at if job is not None else None
    stale = beat is not None and (datetime.now(UTC) - beat).total_seconds() > STALE_AFTER_SECONDS
    if stale and job.status in RUNNING:
        job.status, job.message = "failed", "The import stopped (the server restarted). Nothing was loaded."
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


class Progress:
    """Writes the job's phase and progress at most every half second, in its own transactions."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.last = 0.0

    async def __call__(
        self,
        *,
        status: str | None = None,
        phase: str | None = None,
        progress: float | None = None,
        rows_done: int | None = None,
        force: bool = False,
        **extra: Any,
    ) -> None:
        now = time.monotonic()
        if not force and now - self.last < 0.5:
            return
        self.last = now
        values: dict[str, Any] = {"heartbeat_at": datetime.now(UTC), **extra}
        for name, value in (
            ("status", status),
            ("phase", phase),
            ("progress", progress),
            ("rows_done", rows_done),
        ):
            if value is not None:
                values[name] = value
        async with transaction() as db:
            await db.execute(update(ImportJob).where(ImportJob.id == self.job_id).values(**values))


def _stage_table(job_id: int, part: int = 0) -> str:
    return f"import_stage_{int(job_id)}" + (f"_{int(part)}" if part else "")


def _stage_tables(job_id: int) -> list[str]:
    return [_stage_table(job_id, part) for part in range(STAGE_PARTS)]


def _column(job: ImportJob, key: str) -> str:
    """SQL for a mapped field's trimmed value (NULL when empty or not mapped). A field mapped to
    several columns (an address in parts) joins their non-empty values with spaces."""
    index = job.mapping.get(key)
    if index is None:
        return "NULL::text"
    if isinstance(index, list):
        parts = ", ".join(f"NULLIF(btrim(s.c{int(i)}), '')" for i in index)
        return f"NULLIF(concat_ws(' ', {parts}), '')"
    return f"NULLIF(btrim(s.c{int(index)}), '')"


def _label(job: ImportJob, key: str) -> str:
    index = job.mapping.get(key)
    if index is None:
        return FIELDS[key].label
    return " + ".join(job.header[i] for i in index) if isinstance(index, list) else job.header[index]


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def coded(value_sql: str, codes: dict[str, str] | None, otherwise: str) -> str:
    """SQL for a value read through a code list (file code, upper case -> stored value; an empty
    stored value means none); a value not in the list is `otherwise`."""
    if not codes:
        return otherwise
    cases = " ".join(f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in sorted(codes.items()))
    return f"NULLIF(CASE upper({value_sql}) {cases} ELSE {otherwise} END, '')"


# A large file is read by this many COPY statements at once, each from its own part of the file
# (COPY parses on one core). Files under SPLIT_MIN_BYTES are read whole.
STAGE_PARTS = 2
SPLIT_MIN_BYTES = 4 << 20
QUOTE = b'"'


def record_starts(path: Path, parts: int, smallest: int | None = None) -> list[int]:
    """Byte offsets that cut the file into `parts` pieces of about equal size, each beginning a
    record: just after a newline that is not inside quotes. PostgreSQL's CSV reader ends a record
    at a newline preceded by an even number of quote characters (a doubled quote counts two), so
    the same count finds the same boundaries. [0] when the file is smaller than `smallest` (by
    default SPLIT_MIN_BYTES) or has no such newline."""
    size = path.stat().st_size
    if parts < 2 or size < (SPLIT_MIN_BYTES if smallest is None else smallest):
        return [0]
    starts, quotes, offset = [0], 0, 0
    targets = [size * k // parts for k in range(1, parts)]
    with path.open("rb") as fh:
        while targets and (chunk := fh.read(1 << 20)):
            end = offset + len(chunk)
            if end <= targets[0]:
                quotes += chunk.count(QUOTE)
                offset = end
                continue
            begin = max(targets[0] - offset, 0)
            quotes += chunk.count(QUOTE, 0, begin)
            newline = chunk.find(b"\n", begin)
            while newline != -1 and (quotes + chunk.count(QUOTE, begin, newline)) % 2:
                newline = chunk.find(b"\n", newline + 1)
            if newline == -1:  # (on to the next chunk, counting this one's quotes)
                quotes += chunk.count(QUOTE, begin)
                offset = end
                continue
            starts.append(offset + newline + 1)
            targets.pop(0)
            fh.seek(offset + newline + 1)  # (the rest of the chunk is read again, counted afresh)
            quotes, offset = 0, offset + newline + 1
    return starts if not targets else [0]


async def _file_chunks(path: Path, start: int, end: int | None, report):
    with path.open("rb") as fh:
        fh.seek(start)
        left = None if end is None else end - start
        while left is None or left > 0:
            chunk = await asyncio.to_thread(fh.read, 1 << 20 if left is None else min(1 << 20, left))
            if not chunk:
                break
            if left is not None:
                left -= len(chunk)
            await report(chunk)
            yield chunk


COPY_ERROR_LINE = re.compile(r"line (\d+)")


@dataclass
class StagedPart:
    table: str
    line_offset: int  # added to the table's `line` to give the line in the file
    rows: int


async def stage(job: ImportJob, progress: Progress) -> list[StagedPart]:
    """COPY the file into all-text staging tables, one per part of the file, at once."""
    path = Path(job.path)
    starts = await asyncio.to_thread(record_starts, path, STAGE_PARTS)
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    columns = [f"c{i}" for i in range(len(job.header))]
    first_line = 2 if job.has_header else 1
    engine = database().engine
    read = {"bytes": 0, "lines": 0}

    async def report(chunk: bytes) -> None:
        read["bytes"] += len(chunk)
        read["lines"] += chunk.count(b"\n")
        done = 0.4 * read["bytes"] / max(job.size_bytes, 1)
        await progress(phase="Reading the file", progress=done, rows_done=max(read["lines"] - 1, 0))

    async def copy_part(part: int, start: int, end: int | None) -> int:
        table = _stage_table(job.id, part)
        async with engine.connect() as conn:
            await conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
            await conn.exec_driver_sql(
                f"CREATE UNLOGGED TABLE {table} (line bigint GENERATED ALWAYS AS IDENTITY "
                f"(START WITH {first_line if part == 0 else 1}), "
                + ", ".join(f"{c} text" for c in columns)
                + ")"
            )
            raw = (await conn.get_raw_connection()).driver_connection
            try:
                result = await raw.copy_to_table(
                    table,
                    source=_file_chunks(path, start, end, report),
                    columns=columns,
                    format="csv",
                    header=job.has_header and part == 0,
                    delimiter=job.delimiter,
                    encoding="UTF8" if job.encoding == "utf-8" else "LATIN1",
                )
            except Exception:
                await conn.rollback()
                raise
            await conn.commit()
        return int(result.split()[-1])

    outcomes = await asyncio.gather(
        *(copy_part(part, start, end) for part, (start, end) in enumerate(bounds)), return_exceptions=True
    )
    staged, offset = [], first_line - 1
    for part, outcome in enumerate(outcomes):
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception):
                raise outcome
            # asyncpg's COPY errors: the row is in the message context, counted from the part's start
            raise ImportFailed(_copy_error(outcome, job, offset if part else 0)) from outcome
        staged.append(StagedPart(_stage_table(job.id, part), offset if part else 0, outcome))
        offset += outcome
    return staged


def _copy_error(error: Exception, job: ImportJob, line_offset: int = 0) -> str:
    details = " ".join(str(getattr(error, name, "") or "") for name in ("args", "context", "detail"))
    message = str(error)
    found = COPY_ERROR_LINE.search(getattr(error, "context", "") or details)
    where = f"Line {int(found.group(1)) + line_offset}" if found else "A line"
    if "invalid byte sequence" in message or "character with byte sequence" in message:
        hint = (
            " The file is probably Latin-1: choose Latin-1 and import again."
            if job.encoding == "utf-8"
            else ""
        )
        return f"{where} is not valid {job.encoding.upper()} text.{hint}"
    if "extra data after last expected column" in message:
        return f"{where} has more columns than the header ({len(job.header)})."
    if "missing data for column" in message:
        return f"{where} has fewer columns than the header ({len(job.header)})."
    if "unterminated CSV quoted field" in message:
        return f"{where} opens a quoted field that never closes."
    if "carriage return found in data" in message or "newline found in data" in message:
        return f"{where} has a line break inside a value that is not in quotes, or mixes line endings."
    log.warning("import %s: COPY refused the file: %s", job.id, message[:500])
    return f"{where} could not be read as CSV data."


# How each date format is read: (the separator it is written with, the order of its parts,
# whether month and day are always two digits). A dd.mm.yyyy date may use dots.
DATE_PARTS = {
    "iso": ("-", "ymd", True),
    "us": ("/", "mdy", False),
    "dmy": ("/", "dmy", False),
}


STRONG = "same name and date of birth as"
WEAK = "same name and birth year as"
WEAK_NOTE = " (a weaker match: one of the two has no full date of birth)"


def date_steps(job: ImportJob, value: str, name: str) -> tuple[str, str, str]:
    """Reading a date from text in the job's format, in three steps of select-list SQL, each over
    the one before (so each part is cut and cast once): the text parts of `value`, then the parts as
    numbers, then `name`, the date (NULL when the text is not a real date). Written without regular
    expressions or date arithmetic: at a million rows each function call here costs about 0.1 s."""
    separator, order, two_digits = DATE_PARTS[job.date_format]
    text_sql = f"translate({value}, '.', '/')" if job.date_format == "dmy" else value
    # Only digits and exactly two separators: every part is then digits (or empty).
    digits = "'.0123456789', '/'" if job.date_format == "dmy" else "'0123456789', ''"
    cut = ", ".join(
        f"split_part({text_sql}, '{separator}', {order.index(key) + 1}) AS {name}_{key}" for key in "ymd"
    )
    cut += f", translate({value}, {digits}) = '{separator * 2}' AS {name}_digits"
    shortest = 2 if two_digits else 1
    shape = (
        f"{name}_digits AND length({name}_y) = 4 AND length({name}_m) BETWEEN {shortest} AND 2"
        f" AND length({name}_d) BETWEEN {shortest} AND 2"
    )
    numbers = f"{shape} AS {name}_shape, " + ", ".join(
        f"CASE WHEN {name}_digits AND length({name}_{key}) BETWEEN 1 AND 4 THEN {name}_{key}::int END"
        f" AS {name}_{key}n"
        for key in "ymd"
    )
    y, m, d = (f"{name}_{key}n" for key in "ymd")
    days_in_month = (
        f"CASE WHEN {m} = 2 THEN CASE WHEN {y} % 4 = 0 AND ({y} % 100 <> 0 OR {y} % 400 = 0)"
        f" THEN 29 ELSE 28 END WHEN {m} IN (4, 6, 9, 11) THEN 30 ELSE 31 END"
    )
    valid = (
        f"{name}_shape AND {y} >= 1 AND {m} BETWEEN 1 AND 12 AND {d} BETWEEN 1 AND 31"
        f" AND ({d} <= 28 OR {d} <= {days_in_month})"
    )
    return cut, numbers, f"(CASE WHEN {valid} THEN make_date({y}, {m}, {d}) END) AS {name}"


def date_sql(job: ImportJob, value: str) -> str:
    """`date_steps` as one expression over `value` (for a single value; the import uses the steps)."""
    cut, numbers, read = date_steps(job, "v.v", "x")
    return (
        f"(SELECT x FROM (SELECT {read} FROM (SELECT {numbers} FROM (SELECT {cut} FROM"
        f" (SELECT {value} AS v) v) x1) x2) x3)"
    )


def _norm_table(job_id: int) -> str:
    return f"import_norm_{int(job_id)}"


def _checks(job: ImportJob, today: date | None = None) -> list[tuple[str, str, str]]:
    """(field, failed-when SQL over the normalised row n, reason SQL) for every per-row rule.
    One regular expression per field at most: they dominate the cost of a pass. `today` is the
    office's day (by default now): not the database session's, whose TimeZone decides current_date."""
    form = DATE_FORMATS[job.date_format]
    today = today or clock.today()
    checks: list[tuple[str, str, str]] = []
    for key, spec in FIELDS.items():
        if spec.required:
            checks.append((key, f"n.{key} IS NULL", "'is empty'"))
        if spec.max_length and key not in (
            "date_of_birth",
            "birth_year",
            "registration_date",
            "state_voter_id",
        ):
            checks.append(
                (
                    key,
                    f"length(n.{key}) > {spec.max_length}",
                    f"'is longer than {spec.max_length} characters'",
                )
            )
    checks += [
        (  # (the same rule as ^[A-Z0-9]{4,20}$, at a quarter of the cost)
            "state_voter_id",
            "length(n.state_voter_id) NOT BETWEEN 4 AND 20 OR n.state_voter_id ~ '[^A-Z0-9]'",
            "'must be 4 to 20 letters and digits'",
        ),
        (
            "date_of_birth",
            "n.date_of_birth IS NOT NULL AND n.dob IS NULL",
            f"'is not a date in the {form} form'",
        ),
        (
            "date_of_birth",
            f"n.dob < DATE '1900-01-01' OR n.dob > DATE '{today.isoformat()}'",
            "'is not a plausible date of birth'",
        ),
        ("birth_year", "n.birth_year !~ '^[0-9]{4}$'", "'is not a year (YYYY)'"),
        (
            "birth_year",
            f"n.birth_year ~ '^[0-9]{{4}}$' AND (n.born_year < 1900 OR n.born_year > {today.year})",
            "'is not a plausible birth year'",
        ),
        (
            "birth_year",
            "n.dob IS NOT NULL AND n.birth_year ~ '^[0-9]{4}$' AND n.birth_year::int <> n.born_year",
            "'does not match the year of the date of birth'",
        ),
        (
            "birth_year" if "date_of_birth" not in job.mapping else "date_of_birth",
            "n.date_of_birth IS NULL AND n.birth_year IS NULL",
            "'is empty: a voter needs a date of birth or a birth year'",
        ),
        (
            "registration_date",
            "n.registration_date IS NOT NULL AND n.registered IS NULL",
            f"'is not a date in the {form} form'",
        ),
        (
            "registration_date",
            "n.registered IS NULL AND n.registration_date IS NULL AND NOT EXISTS "
            "(SELECT 1 FROM voter v WHERE v.state_voter_id = n.state_voter_id)",
            "'is blank: a new voter needs the date they registered'",
        ),
        ("registration_date", f"n.registered > DATE '{today.isoformat()}'", "'is in the future'"),
        ("registration_date", "n.registered < n.dob + 5844", "'is before the voter turned 16'"),
        (
            "registration_date",
            "n.dob IS NULL AND n.registered < make_date(n.born_year + 16, 1, 1)",
            "'is before the voter turned 16'",
        ),
        (
            "status",
            "n.status NOT IN ('active', 'inactive', 'removed')",
            "'must be active, inactive or removed'",
        ),
        ("address", "n.address ~ '[<>]|^[=+@]'", "'contains markup or a spreadsheet formula'"),
        ("precinct", "n.precinct IS NOT NULL AND n.precinct_id IS NULL", "'is not a precinct code'"),
        ("party", "n.party IS NOT NULL AND n.party_id IS NULL", "'is not a party abbreviation'"),
    ]
    for key in NAME_FIELDS:
        checks.append(
            (
                key,
                f"n.{key} ~ '{NAME_FORBIDDEN_SQL}'",
                sql_literal(NAME_RULE),
            )
        )
    return checks


# The text columns of a normalised row, as trimmed from the file.
NORM_TEXT_COLUMNS = (
    "line", "state_voter_id", "last_name", "first_name", "middle_name", "date_of_birth", "birth_year",
    "address", "city", "postal_code", "precinct", "party", "status", "registration_date", "precinct_name",
    "last_key", "first_key",
)  # fmt: skip


def normalise_query(job: ImportJob, part: StagedPart | None = None) -> str:
    """The normalising SELECT over one staged part of the file (see `normalise`)."""
    stage_table = part.table if part else _stage_table(job.id)
    line = f"s.line + {int(part.line_offset)}" if part and part.line_offset else "s.line"
    v = {key: _column(job, key) for key in FIELDS}
    codes = job.codes or {}
    precinct = coded(v["precinct"], codes.get("precinct"), f"upper({v['precinct']})")
    party = coded(v["party"], codes.get("party"), f"upper({v['party']})")
    status = coded(v["status"], codes.get("status"), f"lower({v['status']})")
    dob = date_steps(job, "t.date_of_birth", "dob")
    registered = date_steps(job, "t.registration_date", "registered")
    return f"""SELECT n.* FROM (
                SELECT u.*, COALESCE(
                    extract(year FROM u.dob)::int,
                    CASE WHEN u.birth_year ~ '^[0-9]{{4}}$' THEN u.birth_year::int END
                ) AS born_year
                FROM (
                SELECT {", ".join("t." + c for c in NORM_TEXT_COLUMNS)}, p.id AS precinct_id,
                       pa.id AS party_id, {dob[2]}, {registered[2]}
                FROM (
                SELECT t.*, {dob[1]}, {registered[1]} FROM (
                SELECT t.*, {dob[0]}, {registered[0]} FROM (
                    SELECT {line} AS line, upper({v["state_voter_id"]}) AS state_voter_id,
                           {v["last_name"]} AS last_name, {v["first_name"]} AS first_name,
                           {v["middle_name"]} AS middle_name, {v["date_of_birth"]} AS date_of_birth,
                           {v["birth_year"]} AS birth_year,
                           {v["address"]} AS address, {v["city"]} AS city,
                           {v["postal_code"]} AS postal_code,
                           {precinct} AS precinct, {party} AS party,
                           {status} AS status, {v["registration_date"]} AS registration_date,
                           {v["precinct_name"]} AS precinct_name,
                           lower({v["last_name"]}) AS last_key, lower({v["first_name"]}) AS first_key
                    FROM {stage_table} s
                    OFFSET 0  -- fences: each step is worked out once per row, not once per use above
                ) t OFFSET 0) t OFFSET 0) t
                LEFT JOIN precinct p ON p.code = t.precinct
                LEFT JOIN party pa ON pa.abbreviation = t.party
                OFFSET 0
                ) u
            ) n"""


async def normalise(job: ImportJob, parts: list[StagedPart]) -> None:
    """One pass over the staged text: trimmed values, parsed dates, resolved precinct and party
    (the rules are checked afterwards, beside the other checks). Plain CPU work per row: each
    staged part is normalised by its own statement, at once. (PostgreSQL's own parallel query
    splits only the scan: the leader computes every column above it.)"""
    norm = _norm_table(job.id)
    engine = database().engine
    async with engine.connect() as conn:
        await conn.exec_driver_sql(f"DROP TABLE IF EXISTS {norm}")
        await conn.exec_driver_sql(f"CREATE UNLOGGED TABLE {norm} AS {normalise_query(job)} WITH NO DATA")
        await conn.commit()

    async def normalise_part(part: StagedPart) -> None:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
            await conn.exec_driver_sql(f"INSERT INTO {norm} {normalise_query(job, part)}")
            await conn.exec_driver_sql(f"DROP TABLE {part.table}")
            await conn.commit()

    await asyncio.gather(*(normalise_part(part) for part in parts))


def check_statements(job: ImportJob) -> dict[str, str]:
    """The statements that write a checked file's issues, by name (independent of each other)."""
    norm = _norm_table(job.id)
    checks = _checks(job)
    # A row breaks a rule: then (only) its reasons are worked out one by one.
    any_bad = " OR ".join(f"COALESCE({failed}, false)" for _, failed, _ in checks)
    reasons = ",\n".join(
        f"(:label_{key}, left(n.{key}, 200), {reason}, COALESCE({failed}, false))"
        for key, failed, reason in checks
    )
    return {
        "rules": f"""INSERT INTO import_issue (job_id, kind, line, column_name, value, reason)
            SELECT {job.id}, 'error', n.line, c.col, COALESCE(c.val, ''), c.reason
            FROM {norm} n, LATERAL (VALUES {reasons}) AS c(col, val, reason, failed)
            WHERE ({any_bad}) AND c.failed""",
        "same_id": f"""INSERT INTO import_issue (job_id, kind, line, column_name, value, reason)
            SELECT {job.id}, 'error', n.line, :label_state_voter_id, n.state_voter_id,
                   'is also on line ' || d.first
            FROM (SELECT state_voter_id, min(line) AS first FROM {norm}
                  WHERE state_voter_id IS NOT NULL GROUP BY state_voter_id HAVING count(*) > 1) d
            JOIN {norm} n USING (state_voter_id)
            WHERE n.line > d.first""",
        # Likely duplicates: the same name and date of birth under another voter ID; a weaker
        # match where one of the two is known by birth year only. Flagged only, never merged.
        "like_roll": f"""INSERT INTO import_issue (job_id, kind, line, column_name, value, reason)
            SELECT {job.id}, 'duplicate', n.line, :label_state_voter_id, n.state_voter_id,
                   CASE WHEN bool_or(o.date_of_birth = n.dob)
                        THEN '{STRONG} voter ' || min(o.state_voter_id) FILTER (WHERE o.date_of_birth = n.dob)
                        ELSE '{WEAK} voter ' || min(o.state_voter_id) || '{WEAK_NOTE}' END
            FROM {norm} n JOIN voter o
              ON o.last_key = n.last_key AND o.first_key = n.first_key
             AND o.birth_year = n.born_year AND o.state_voter_id <> n.state_voter_id
             AND (o.date_of_birth = n.dob OR o.date_of_birth IS NULL OR n.dob IS NULL)
            GROUP BY n.line, n.state_voter_id""",
        "like_file": f"""INSERT INTO import_issue (job_id, kind, line, column_name, value, reason)
            SELECT {job.id}, 'duplicate', n.line, :label_state_voter_id, n.state_voter_id,
                   CASE WHEN d.strong THEN '{STRONG} line ' ELSE '{WEAK} line ' END || d.first
                   || CASE WHEN d.strong THEN '' ELSE '{WEAK_NOTE}' END
            FROM (SELECT last_key, first_key, born_year, dob, min(line) AS first,
                         dob IS NOT NULL AS strong
                  FROM {norm} WHERE born_year IS NOT NULL
                  GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d
            JOIN {norm} n
              ON n.last_key = d.last_key AND n.first_key = d.first_key
             AND n.born_year = d.born_year AND n.dob IS NOT DISTINCT FROM d.dob
            WHERE n.line > d.first""",
    }


# From this many rows a file is compared with the roll in one pass over the roll, not a probe per row.
HASH_JOIN_ROWS = 20_000


async def validate(job: ImportJob, progress: Progress, parts: list[StagedPart]) -> dict[str, int]:
    """Check every staged row; write issues; return the counts."""
    norm = _norm_table(job.id)
    total = sum(part.rows for part in parts)
    async with transaction() as db:
        await db.execute(delete(ImportIssue).where(ImportIssue.job_id == job.id))
    await progress(
        status="validating", phase="Checking every row", progress=0.45, rows_done=total, force=True
    )
    with timed(job.id, "normalising"):
        await normalise(job, parts)
    await progress(phase="Checking every row", progress=0.6, force=True)
    labels = {f"label_{key}": _label(job, key) for key in FIELDS}
    statements = check_statements(job)

    async def run(name: str, statement: str) -> None:
        async with transaction() as db:
            # The file's rows are grouped in memory; a fresh table has no statistics, and the
            # planner would sort a million rows to join a few hundred groups back to them.
            await db.execute(text("SET LOCAL work_mem = '256MB'"))
            await db.execute(text("SET LOCAL enable_mergejoin = off"))
            if name == "like_roll" and total > HASH_JOIN_ROWS:
                # One index probe per row of the file reads every voter of that name from the
                # heap: 5.5 s for 100,000 rows against a roll of 1,000,000, where one pass over
                # the roll takes 1.1 s. (The planner counts the probes cheap.)
                await db.execute(text("SET LOCAL enable_nestloop = off"))
            await db.execute(text(statement), {k: v for k, v in labels.items() if f":{k}" in statement})

    with timed(job.id, "the checks"):
        # (independent statements: one core each)
        await asyncio.gather(*(run(name, statement) for name, statement in statements.items()))
    await progress(phase="Checking every row", progress=0.8, force=True)
    async with transaction() as db:
        errors = await db.scalar(
            text("SELECT count(DISTINCT line) FROM import_issue WHERE job_id = :j AND kind = 'error'"),
            {"j": job.id},
        )
        duplicates, weak = (
            await db.execute(
                text(
                    "SELECT count(DISTINCT line) FILTER (WHERE reason LIKE :strong),"
                    " count(DISTINCT line) FILTER (WHERE reason NOT LIKE :strong)"
                    " FROM import_issue WHERE job_id = :j AND kind = 'duplicate'"
                ),
                {"j": job.id, "strong": STRONG + "%"},
            )
        ).one()
        existing = await db.scalar(text(f"SELECT count(*) FROM {norm} n JOIN voter o USING (state_voter_id)"))
    return {
        "rows": total,
        "errors": errors,
        "duplicates": duplicates,
        "weak_duplicates": weak,
        "new": total - existing,
        "updated": existing,
    }


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
COMPARED = (
    "first_name",
    "middle_name",
    "last_name",
    "date_of_birth",
    "birth_year",
    "address",
    "city",
    "postal_code",
    "precinct_id",
    "party_id",
    "status",
    "registration_date",
)


BULK_MIN_ROWS = 100_000


def bulk_load(new_rows: int, roll_rows: int) -> bool:
    """A load big enough to set the secondary indexes and foreign keys aside (PostgreSQL's own
    advice for populating a table): at least 100,000 new voters and a quarter of the roll. It
    locks the roll against reading for its seconds, so an ordinary import never does it."""
    return new_rows >= BULK_MIN_ROWS and new_rows * 4 >= roll_rows


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


async def load(job: ImportJob, actor: User | None, *, rejected: int = 0) -> dict[str, int]:
    """Insert new voters and update existing ones in one transaction; all rows or none."""
    norm = _norm_table(job.id)
    assert list(UPDATED_FROM_NORM) == list(COMPARED)
    plain_insert = f"""
        INSERT INTO voter (state_voter_id, first_name, middle_name, last_name, date_of_birth, birth_year,
                           address, city, postal_code, precinct_id, party_id, status, registration_date,
                           updated_by_id)
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
    async with transaction() as db:
        new_rows = job.counts.get("new", 0)
        roll = await db.scalar(
            text("SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE oid = 'voter'::regclass")
        )
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
                inserted = (await db.execute(text(insert_new), actor_id)).rowcount
            else:
                inserted, updated = (await db.execute(text(plain_insert), actor_id)).rowcount, 0
        if rebuild:
            with timed(job.id, "rebuilding indexes and foreign keys"):
                await _restore_after_bulk_load(db, rebuild)
        total = await db.scalar(text(f"SELECT count(*) FROM {norm}"))
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
    return counts


async def drop_stage(job_id: int) -> None:
    async with database().engine.connect() as conn:
        for table in _stage_tables(job_id):
            await conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        await conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_norm_table(job_id)}")
        await conn.commit()


async def check_file(job_id: int) -> ImportJob:
    """Stage and validate: the job ends "validated" (ready to load) or "invalid" (nothing loaded)."""
    progress = Progress(job_id)
    async with transaction() as db:
        job = await db.get(ImportJob, job_id)
    started = datetime.now(UTC)
    await progress(status="staging", phase="Reading the file", progress=0.0, started_at=started, force=True)
    try:
        with timed(job_id, "staging"):
            parts = await stage(job, progress)
        if sum(part.rows for part in parts) == 0:
            raise ImportFailed("The file has a header but no voter rows.")
        counts = await validate(job, progress, parts)
    except ImportFailed as failure:
        await drop_stage(job_id)
        await progress(
            status="invalid",
            phase="",
            progress=1.0,
            message=str(failure),
            finished_at=datetime.now(UTC),
            force=True,
        )
    except Exception:
        log.exception("import %s: the check failed", job_id)
        await drop_stage(job_id)
        await progress(
            status="failed",
            phase="",
            progress=1.0,
            message=f"The check failed on the server (logged as import {job_id}). Nothing was loaded.",
            finished_at=datetime.now(UTC),
            force=True,
        )
        raise
    else:
        status = "invalid" if counts["errors"] else "validated"
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
        return await db.get(ImportJob, job_id)


def partial_possible(job: ImportJob) -> bool:
    """A checked file with row errors (not a file-level failure) whose rows are still kept."""
    errors, rows = job.counts.get("errors", 0), job.counts.get("rows", 0)
    return job.status == "invalid" and 0 < errors < rows


def rejected_path(job_id: int) -> Path:
    from flask import current_app

    return Path(current_app.instance_path) / "imports" / f"rejected-{int(job_id)}.csv"


async def set_rejected_aside(job: ImportJob) -> int:
    """For a partial load: write the rows that broke a rule, with their reasons, to a CSV that can be
    fixed and imported again (formula-safe), and take them out of the rows to load."""
    from portal.voters.queries import neutralise

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
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["line", *columns, "reasons"])
            writer.writerows([row[0], *(neutralise(v or "") for v in row[1:])] for row in rows)
        await conn.execute(
            text(
                f"DELETE FROM {norm} WHERE line IN "
                "(SELECT line FROM import_issue WHERE job_id = :job AND kind = 'error')"
            ),
            {"job": job.id},
        )
        await conn.commit()
    return len(rows)


async def load_file(job_id: int, actor: User | None, partial: bool = False) -> ImportJob:
    """Load a validated job (one transaction) and tidy up. `partial`: a job with row errors loads
    its valid rows, and the rejected ones go to a file of their own for review."""
    progress = Progress(job_id)
    async with transaction() as db:
        job = await db.get(ImportJob, job_id)
    allowed = ("validated", "invalid", "loading") if partial else ("validated", "loading")
    if job.status not in allowed or (job.status == "invalid" and not partial_possible(job)):
        raise ImportFailed(f"This import is {job.status}; only a checked file can be loaded.")
    await progress(status="loading", phase="Writing the roll (one transaction)", progress=0.85, force=True)
    rejected = 0
    try:
        if partial and job.counts.get("errors"):
            rejected = await set_rejected_aside(job)
        with timed(job_id, "the load (one transaction)"):
            counts = await load(job, actor, rejected=rejected)
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
    with timed(job_id, "ANALYZE voter"):
        async with database().engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE voter"))
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
        return await db.get(ImportJob, job_id)


def _discard_upload(path: Path) -> None:
    """Delete a loaded upload, but only our own copy under instance/imports (never a CLI user's file)."""
    from flask import current_app

    uploads = (Path(current_app.instance_path) / "imports").resolve()
    if path.resolve().parent == uploads:
        path.unlink(missing_ok=True)


def issues_csv_rows(found: list[ImportIssue]) -> list[list[str]]:
    from portal.voters.queries import neutralise

    return [
        [str(i.line), neutralise(i.column_name), neutralise(i.value), neutralise(i.reason)] for i in found
    ]


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


# Reference data the file names but the portal lacks ----------------------------------------------------


@dataclass
class MissingReference:
    precincts: list[tuple[str, int, str]] = field(default_factory=list)  # code, rows, name
    parties: list[tuple[str, int]] = field(default_factory=list)  # abbreviation, rows
    statuses: list[tuple[str, int]] = field(default_factory=list)  # code, rows (mapped, never created)
    unusable: list[str] = field(default_factory=list)  # codes that cannot be created

    def __bool__(self) -> bool:
        return bool(self.precincts or self.parties or self.statuses)


async def missing_reference(session: AsyncSession, job: ImportJob) -> MissingReference:
    """Precincts and parties the checked file names that are not in the portal, with their rows
    (from the kept rows of a check with row errors)."""
    from portal.precincts.queries import PRECINCT_CODE

    found = MissingReference()
    if job.status != "invalid" or not await session.scalar(
        text("SELECT to_regclass(:t) IS NOT NULL"), {"t": _norm_table(job.id)}
    ):
        return found
    norm = _norm_table(job.id)
    precincts = await session.execute(
        text(
            f"SELECT precinct, count(*), mode() WITHIN GROUP (ORDER BY precinct_name) FROM {norm} "
            "WHERE precinct IS NOT NULL AND precinct_id IS NULL GROUP BY precinct ORDER BY precinct"
        )
    )
    for code, rows, name in precincts:
        if PRECINCT_CODE.match(code):
            found.precincts.append((code, rows, (name or f"Precinct {code}")[:120]))
        else:
            found.unusable.append(code)
    parties = await session.execute(
        text(
            f"SELECT party, count(*) FROM {norm} WHERE party IS NOT NULL AND party_id IS NULL "
            "GROUP BY party ORDER BY party"
        )
    )
    found.parties = [(abbr, rows) for abbr, rows in parties if len(abbr) <= 10]
    statuses = await session.execute(
        text(
            f"SELECT upper(status), count(*) FROM {norm} "
            "WHERE status NOT IN ('active', 'inactive', 'removed') GROUP BY 1 ORDER BY 1"
        )
    )
    found.statuses = [(code, rows) for code, rows in statuses if len(code) <= 40]
    return found


async def known_reference(session: AsyncSession, missing: MissingReference) -> dict[str, list]:
    """What a missing precinct or party can be read as: the portal's precinct codes and parties."""
    from portal.models import Party, Precinct

    known: dict[str, list] = {"precincts": [], "parties": []}
    if missing.precincts:
        known["precincts"] = list(await session.scalars(select(Precinct.code).order_by(Precinct.code)))
    if missing.parties:
        known["parties"] = list(await session.scalars(select(Party).order_by(Party.name)))
    return known


async def resolve_reference(
    session: AsyncSession, job: ImportJob, actor: User | None, form
) -> dict[str, int]:
    """Apply the import page's choices for what the file names and the portal lacks: a precinct
    (`precinct_N`: blank creates it, a code reads it as that existing precinct), a party
    (`party_N`: "create", "none" or an existing abbreviation), a status (`status_N`: active,
    inactive or removed). Mapped codes go to the job's code lists (saved with a preset)."""
    from portal.models import Party, Precinct  # (the precincts and parties named so far)

    missing = await missing_reference(session, job)
    codes = {kind: dict(values) for kind, values in (job.codes or {}).items()}
    precincts = set((await session.scalars(select(Precinct.code))).all())
    parties = set((await session.scalars(select(Party.abbreviation))).all())
    create_precincts, create_parties = [], []
    for n, item in enumerate(missing.precincts):
        chosen = form.get(f"precinct_{n}", "").strip().upper()
        if not chosen:
            create_precincts.append(item)
        elif chosen in precincts:
            codes.setdefault("precinct", {})[item[0]] = chosen
        else:
            raise ImportFailed(f"There is no precinct {chosen[:20]} to read {item[0]} as.")
    for n, item in enumerate(missing.parties):
        chosen = form.get(f"party_{n}", "create")
        if chosen == "create":
            create_parties.append(item)
        elif chosen == "none" or chosen in parties:
            codes.setdefault("party", {})[item[0]] = "" if chosen == "none" else chosen
        else:
            raise ImportFailed(f"There is no party {chosen[:20]} to read {item[0]} as.")
    for n, (code, _) in enumerate(missing.statuses):
        chosen = form.get(f"status_{n}", "")
        if chosen in ("active", "inactive", "removed"):
            codes.setdefault("status", {})[code] = chosen
    mapped = sum(len(v) for v in codes.values()) - sum(len(v) for v in (job.codes or {}).values())
    missing.precincts, missing.parties = create_precincts, create_parties
    made = await _create_reference(session, job, actor, missing)
    await session.execute(update(ImportJob).where(ImportJob.id == job.id).values(codes=codes))
    if mapped:
        await record_event(
            session,
            actor=actor,
            action="map_codes",
            entity="import",
            entity_id=job.id,
            after={"codes": codes},
        )
    job.codes = codes
    return {"precincts": made[0], "parties": made[1], "mapped": mapped}


async def create_missing_reference(
    session: AsyncSession,
    job: ImportJob,
    actor: User | None,
    kinds: tuple[str, ...] = ("precincts", "parties"),
) -> tuple[int, int]:
    """Create every precinct and party (of `kinds`) the file names and the portal lacks (one audit
    event each list); (precincts, parties) created."""
    missing = await missing_reference(session, job)
    missing.precincts = missing.precincts if "precincts" in kinds else []
    missing.parties = missing.parties if "parties" in kinds else []
    return await _create_reference(session, job, actor, missing)


async def _create_reference(
    session: AsyncSession, job: ImportJob, actor: User | None, missing: MissingReference
) -> tuple[int, int]:
    from portal.models import Party, Precinct

    session.add_all(
        Precinct(code=code, name=name, polling_place="", updated_by_id=actor.id if actor else None)
        for code, _, name in missing.precincts
    )
    taken = set((await session.scalars(select(Party.name))).all())
    session.add_all(
        Party(name=abbr if abbr not in taken else f"{abbr} (from import {job.id})", abbreviation=abbr,
              updated_by_id=actor.id if actor else None)
        for abbr, _ in missing.parties
    )  # fmt: skip
    await session.flush()
    for entity, items in (("precinct", missing.precincts), ("party", missing.parties)):
        if items:
            await record_event(
                session,
                actor=actor,
                action="bulk_create",
                entity=entity,
                entity_id=f"import-{job.id}",
                after={"from_import": job.id, "codes": [item[0] for item in items]},
            )
    return len(missing.precincts), len(missing.parties)


# Saved presets -------------------------------------------------------------------------------------

PRESET_NAME = re.compile(r"^[\w][\w .()/-]{0,79}$")


def preset_name_problem(name: str) -> str | None:
    if not PRESET_NAME.match(name):
        return (
            "Name the preset with 1 to 80 letters, digits, spaces or . ( ) / - (e.g. “County export 2026”)."
        )
    if name in LAYOUTS or name == "auto":
        return f"“{name}” is the name of a published layout; choose another."
    return None


async def save_preset(session: AsyncSession, job: ImportJob, name: str, actor: User | None) -> bool:
    """Save the job's mapping (by column name), date format and code lists as `name`; True when
    it replaced a preset of that name."""
    from portal.models import ImportPreset
    from portal.voters.layouts import fields_by_name

    preset = await session.scalar(select(ImportPreset).where(ImportPreset.name == name))
    replaced = preset is not None
    if preset is None:
        preset = ImportPreset(name=name, created_by_id=actor.id if actor else None)
        session.add(preset)
    preset.fields = fields_by_name(job.header, job.mapping)
    preset.date_format, preset.codes = job.date_format, job.codes or {}
    await session.flush()
    await record_event(
        session,
        actor=actor,
        action="update" if replaced else "create",
        entity="import_preset",
        entity_id=preset.id,
        after={
            "name": name,
            "fields": preset.fields,
            "date_format": preset.date_format,
            "codes": preset.codes,
        },
    )
    return replaced


def preset_title(name: str) -> str:
    return LAYOUTS[name].title if name in LAYOUTS else f"your saved preset “{name}”" if name else ""
