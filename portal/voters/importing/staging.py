"""Staging: the file into UNLOGGED all-text tables with PostgreSQL COPY (asyncpg), in constant
memory, a large file in parts at once; COPY's refusals as messages naming the file's line."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from portal.db import asyncpg_connection, database, is_connection_failure
from portal.models import ImportJob
from portal.voters.importing.fields import ImportFailed
from portal.voters.importing.progress import Progress

log = logging.getLogger(__name__)


# A large file is read by this many COPY statements at once, each from its own part of the file
# (COPY parses on one core). Files under SPLIT_MIN_BYTES are read whole. A file loaded as it is
# normalised (a first load, see `Beside.first_load`) is cut into LOAD_PARTS parts, read
# STAGE_PARTS at a time: the load starts on the first part while the others are normalised, and
# only the last part is written after the normalising ends. (16 parts rather than 8: at 1,000,000
# rows the write ended 0.4-0.5 s after the normalising rather than 0.9-1.7 s, but the whole
# import, run alternately, only 0.06-0.17 s sooner.)
STAGE_PARTS = 2
LOAD_PARTS = 16
SPLIT_MIN_BYTES = 4 << 20
QUOTE = b'"'


def _stage_table(job_id: int, part: int = 0) -> str:
    return f"import_stage_{int(job_id)}" + (f"_{int(part)}" if part else "")


def _stage_tables(job_id: int) -> list[str]:
    return [_stage_table(job_id, part) for part in range(max(STAGE_PARTS, LOAD_PARTS))]


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
    first_line: int  # the line in the file of its first row

    @property
    def lines(self) -> tuple[int, int]:
        """Its rows' lines in the file: from, and to (not included)."""
        return self.first_line, self.first_line + self.rows


async def stage(job: ImportJob, progress: Progress, parts: int = STAGE_PARTS) -> list[StagedPart]:
    """COPY the file into all-text staging tables, one per part of the file, STAGE_PARTS at once."""
    path = Path(job.path)
    starts = await asyncio.to_thread(record_starts, path, parts)
    at_once = asyncio.Semaphore(STAGE_PARTS)
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
        async with at_once, engine.connect() as conn:
            await conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
            await conn.exec_driver_sql(
                f"CREATE UNLOGGED TABLE {table} (line bigint GENERATED ALWAYS AS IDENTITY "
                f"(START WITH {first_line if part == 0 else 1}), "
                + ", ".join(f"{c} text" for c in columns)
                + ")"
            )
            raw = await asyncpg_connection(conn)
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
            if not isinstance(outcome, Exception) or is_connection_failure(outcome):
                raise outcome  # (a lost connection says nothing about the file)
            # asyncpg's COPY errors: the row is in the message context, counted from the part's start
            raise ImportFailed(_copy_error(outcome, job, offset if part else 0)) from outcome
        line_offset = offset if part else 0
        first = first_line if part == 0 else line_offset + 1
        staged.append(StagedPart(_stage_table(job.id, part), line_offset, outcome, first))
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
