"""Voter-file import: analyse, stage with COPY, validate in SQL, load in one transaction.

1. `analyse()` reads the head of the uploaded file: encoding (UTF-8 with or without BOM, else
   Latin-1), delimiter, header, a suggested column mapping and a preview (`sniff`).
2. `stage()` streams the file into an UNLOGGED all-text table with PostgreSQL COPY (asyncpg),
   in constant memory; `line` numbers the records (the header is line 1) (`staging`).
3. `validate()` checks every row set-wise in SQL and writes each failure (line, column, value,
   reason) and each likely duplicate to `import_issue`; counts new and updated voters (`checks`).
4. `load()` inserts and updates the roll in one transaction (INSERT .. ON CONFLICT), or nothing
   (`load`).
Progress lives in the `import_job` row, so it survives a reload and any worker can show it
(`progress`; the job itself and its runs in the background: `jobs`). The fields an import maps:
`fields`; what the file names and the portal lacks: `reference`; saved mappings: `presets`.

From the command line (`check_and_load`) the load runs beside the check and commits only if it
passes (`load.Beside`); a first load (a large file into an empty roll) is written part by part
as the check normalises the file (`Beside.first_load`).

Imported here: the names the views, the command line and the tests use. Not the tuning constants
(`SPLIT_MIN_BYTES`, `LOAD_PARTS`, `HASH_JOIN_ROWS`, `BULK_MIN_ROWS`, `FIRST_LOAD_LOCK_WAIT`): each
is read in its own module, which is the one to change or monkeypatch.
"""

from portal.voters.importing.checks import date_sql
from portal.voters.importing.fields import DATE_FORMATS, FIELDS, NAME_FIELDS, ImportFailed, missing_fields
from portal.voters.importing.jobs import (
    CHECK_KEPT_HOURS,
    ISSUES_CSV_HEADER,
    RUNNING,
    SCRATCH_PATTERN,
    check_and_load,
    check_file,
    create_job,
    drop_stage,
    get_job,
    issues,
    issues_csv_rows,
    load_file,
    mark_loading,
    partial_possible,
    prepare_check,
    save_upload,
    start,
)
from portal.voters.importing.load import bulk_load, rejected_path, roll_size
from portal.voters.importing.presets import preset_name_problem, preset_title, save_preset
from portal.voters.importing.reference import (
    create_missing_reference,
    known_reference,
    missing_reference,
    resolve_reference,
)
from portal.voters.importing.sniff import analyse, choose_preset
from portal.voters.importing.staging import record_starts

__all__ = [
    "CHECK_KEPT_HOURS",
    "DATE_FORMATS",
    "FIELDS",
    "ISSUES_CSV_HEADER",
    "NAME_FIELDS",
    "RUNNING",
    "SCRATCH_PATTERN",
    "ImportFailed",
    "analyse",
    "bulk_load",
    "check_and_load",
    "check_file",
    "choose_preset",
    "create_job",
    "create_missing_reference",
    "date_sql",
    "drop_stage",
    "get_job",
    "issues",
    "issues_csv_rows",
    "known_reference",
    "load_file",
    "mark_loading",
    "missing_fields",
    "missing_reference",
    "partial_possible",
    "prepare_check",
    "preset_name_problem",
    "preset_title",
    "record_starts",
    "rejected_path",
    "resolve_reference",
    "roll_size",
    "save_preset",
    "save_upload",
    "start",
]
