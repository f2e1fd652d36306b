"""The head of an uploaded file: its encoding, delimiter, header and preview, the layout it is
recognised as, and the mapping of its columns to the roll's fields (suggested, or from a preset)."""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.formatting import number
from portal.models import ImportPreset
from portal.voters.importing.fields import FIELDS, ImportFailed, missing_fields
from portal.voters.layouts import LAYOUTS, Columns, Layout

HEAD_BYTES = 256 * 1024
MAX_COLUMNS = 500  # (states publish up to ~100; PostgreSQL stops at 1,600)


@dataclass
class Analysis:
    size: int
    encoding: str = "utf-8"
    delimiter: str = ","
    header: list[str] = field(default_factory=list)
    preview: list[list[str]] = field(default_factory=list)
    mapping: dict[str, int | list[int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    has_header: bool = True
    first_row: list[str] = field(default_factory=list)
    date_format: str = ""  # from a recognised layout
    preset: str = ""  # the layout or saved preset that mapped the file
    codes: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        return missing_fields(self.mapping)


def suggest_mapping(header: list[str]) -> dict[str, int | list[int]]:
    names = [normalised(h) for h in header]
    mapping: dict[str, int | list[int]] = {}
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
    analysis.delimiter = max(counts, key=counts.__getitem__)
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
        if normalised(name) in seen:
            analysis.problems.append(f"Columns {seen[normalised(name)]} and {n} have the same name “{name}”.")
        seen[normalised(name)] = n
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
    named = next((p for p in presets if p.name == name), None)
    if named is None:
        known = ", ".join([*LAYOUTS, *(p.name for p in presets)])
        raise ImportFailed(f"There is no preset “{name}”. Presets: {known}.")
    fits = preset_fits(named, analysis.header)
    if fits is None:
        raise ImportFailed(f"The file lacks columns the preset “{name}” names.")
    analysis.mapping, analysis.preset = fits, named.name
    analysis.date_format, analysis.codes = named.date_format, named.codes


# Recognising a published layout, and mapping by column name (a layout's or a saved preset's) ----------


def normalised(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def _names(columns: Columns) -> tuple[str, ...]:
    return (columns,) if isinstance(columns, str) else tuple(columns)


def mapping_by_name(
    header: list[str], fields: dict[str, Any], *, strict: bool = False
) -> dict[str, int | list[int]] | None:
    """Column numbers for fields given by column name(s). Columns the header lacks are skipped
    (a layout's optional columns); `strict`: any missing column means no mapping (None)."""
    where: dict[str, int] = {}
    for index, name in enumerate(header):
        where.setdefault(normalised(name), index)
    mapping: dict[str, int | list[int]] = {}
    for key, columns in fields.items():
        found = [where[normalised(n)] for n in _names(columns) if normalised(n) in where]
        if strict and len(found) < len(_names(columns)):
            return None
        if found:
            mapping[key] = found if not isinstance(columns, str) else found[0]
    return mapping


def fields_by_name(header: list[str], mapping: dict[str, Any]) -> dict[str, str | list[str]]:
    """A job's mapping as column names (what a saved preset keeps)."""
    return {
        key: [header[i] for i in index] if isinstance(index, list) else header[index]
        for key, index in mapping.items()
    }


def headerless_layout(first_row: list[str]) -> Layout | None:
    """The layout of a file without a header, by its column count and the shape of its first row."""
    for layout in LAYOUTS.values():
        if layout.has_header or len(first_row) != len(layout.columns):
            continue
        if all(re.match(pattern, first_row[i].strip()) for i, pattern in layout.shape):
            return layout
    return None


def recognise(header: list[str]) -> tuple[Layout, dict[str, int | list[int]]] | None:
    """The published layout whose columns this header carries (all its fields' columns that it
    has, and most of the rest), with the mapping; None when none fits."""
    names = {normalised(h) for h in header}
    best = None
    for layout in LAYOUTS.values():
        if not layout.has_header:
            continue
        present = sum(normalised(c) in names for c in layout.columns)
        if present < 0.8 * len(layout.columns):
            continue
        mapping = mapping_by_name(header, layout.fields)
        if mapping is None or missing_fields(mapping):
            continue
        if best is None or present > best[0]:
            best = (present, layout, mapping)
    return (best[1], best[2]) if best else None


async def saved_presets(session: AsyncSession) -> list[ImportPreset]:
    return list((await session.scalars(select(ImportPreset).order_by(ImportPreset.name))).all())


def preset_fits(preset: ImportPreset, header: list[str]) -> dict[str, int | list[int]] | None:
    """The mapping a saved preset gives this header, when the header has every column it names."""
    mapping = mapping_by_name(header, preset.fields, strict=True)
    return mapping if mapping is not None and not missing_fields(mapping) else None
