"""CSV files for staff to download and open in a spreadsheet, every cell formula-safe: a cell that
starts with = + - @, a tab or a carriage return would be run as a formula, so it gets a leading
apostrophe. Every CSV the portal hands out is written here (the voter export, the audit log, the
reports, an import's issues and rejected rows). The line ending is the caller's: the reports and
the audit log have always ended lines with LF, the roll's files with CRLF (the csv module's)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from pathlib import Path

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CRLF = "\r\n"

Row = Iterable[object]


def neutralise(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else value.isoformat() if isinstance(value, date | datetime) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(header: Sequence[str], rows: Iterable[Row], *, lineterminator: str = CRLF) -> str:
    """A whole CSV file: the header, then the rows, every cell neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=lineterminator)
    writer.writerow(header)
    writer.writerows([neutralise(v) for v in row] for row in rows)
    return buffer.getvalue()


def csv_chunks(
    header: Sequence[str], batches: Iterable[Iterable[Row]], *, lineterminator: str = CRLF
) -> Iterator[str]:
    """A CSV file streamed in constant memory: the text of each batch of rows as it comes (the
    header with the first), every cell neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=lineterminator)
    writer.writerow(header)
    for rows in batches:
        writer.writerows([neutralise(v) for v in row] for row in rows)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Row]) -> None:
    """A CSV file on disk (UTF-8, CRLF), every cell neutralised."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows([neutralise(v) for v in row] for row in rows)
