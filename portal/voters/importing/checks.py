"""The check of a staged file, set-wise in SQL: each row normalised (trimmed values, dates read,
precinct and party resolved), then every rule, the voter IDs repeated in the file and the likely
duplicates, each failure written to `import_issue`; the counts of new and updated voters."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import delete, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from portal import clock
from portal.db import database, transaction
from portal.inputs import NAME_FORBIDDEN_SQL, NAME_RULE
from portal.models import ImportIssue, ImportJob
from portal.voters.importing.fields import DATE_FORMATS, FIELDS, NAME_FIELDS
from portal.voters.importing.progress import Progress, timed
from portal.voters.importing.staging import STAGE_PARTS, StagedPart, _stage_table

if TYPE_CHECKING:
    from portal.voters.importing.load import Beside

log = logging.getLogger(__name__)

Lookups = tuple[str, str]  # (precinct table, party table)


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


# The quick reader: PostgreSQL's own cast, for a text shaped exactly as the format writes a date
# (only digits between the separators, each part of its length), read in the format's order.
DATE_SHAPES = {
    "iso": ("____-__-__",),
    "us": ("__/__/____", "_/__/____", "__/_/____", "_/_/____"),
    "dmy": ("__/__/____", "_/__/____", "__/_/____", "_/_/____"),
}
DATE_STYLES = {"iso": "ISO, YMD", "us": "ISO, MDY", "dmy": "ISO, DMY"}
DATA_EXCEPTION = "22"  # (the class of PostgreSQL's SQLSTATEs a refused cast raises)


def date_cast_sql(job: ImportJob, value: str, *, slashed: bool = False) -> str:
    """The quick date reader, for the session's DateStyle set to DATE_STYLES[job.date_format]:
    the date, or NULL where `date_steps` reads none; or an error (class DATA_EXCEPTION) for a text
    of the right shape that is no real date (month 13, 30 February, year 0), which `date_steps`
    reads as none. Casting costs a sixth of those steps (0.24 s against 1.4 s a million values):
    the import reads each part of a file with it, and reads a part again with the steps when the
    cast refuses one of its dates (`normalise_part`). `slashed`: a dd.mm.yyyy `value` already
    written with slashes."""
    separator = DATE_PARTS[job.date_format][0]
    text_sql = f"translate({value}, '.', '/')" if job.date_format == "dmy" and not slashed else value
    shapes = " OR ".join(f"{text_sql} LIKE '{shape}'" for shape in DATE_SHAPES[job.date_format])
    digits = f"translate({text_sql}, '0123456789', '') = '{separator * 2}'"
    return f"CASE WHEN ({shapes}) AND {digits} THEN CAST({text_sql} AS date) END"


def date_sql(job: ImportJob, value: str) -> str:
    """`date_steps` as one expression over `value` (for a single value; the import uses the steps
    where the quick cast refuses a part's date: see `normalise_part`)."""
    cut, numbers, read = date_steps(job, "v.v", "x")
    return (
        f"(SELECT x FROM (SELECT {read} FROM (SELECT {numbers} FROM (SELECT {cut} FROM"
        f" (SELECT {value} AS v) v) x1) x2) x3)"
    )


def _norm_table(job_id: int) -> str:
    return f"import_norm_{int(job_id)}"


def _lookup_tables(job_id: int) -> Lookups:
    """A first load's copies of the precincts' codes and the parties' abbreviations (see
    `normalise_as_loaded`)."""
    return f"import_precincts_{int(job_id)}", f"import_parties_{int(job_id)}"


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
)  # fmt: skip


def normalise_query(
    job: ImportJob, part: StagedPart | None = None, lookups: Lookups | None = None, *, quick: bool = True
) -> str:
    """The normalising SELECT over one staged part of the file (see `normalise`); `lookups`: the
    tables that resolve precinct codes and party abbreviations, by default the portal's own.
    `quick`: dates read by `date_cast_sql` (else by `date_steps`, which never fails)."""
    precincts, parties = lookups or ("precinct", "party")
    stage_table = part.table if part else _stage_table(job.id)
    line = f"s.line + {int(part.line_offset)}" if part and part.line_offset else "s.line"
    v = {key: _column(job, key) for key in FIELDS}
    codes = job.codes or {}
    precinct = coded(v["precinct"], codes.get("precinct"), f"upper({v['precinct']})")
    party = coded(v["party"], codes.get("party"), f"upper({v['party']})")
    status = coded(v["status"], codes.get("status"), f"lower({v['status']})")
    if quick:  # (a dd.mm.yyyy date's dots made slashes once)
        dmy = job.date_format == "dmy"
        dates = {"dob": "t.date_of_birth", "registered": "t.registration_date"}
        cut = (
            "".join(f", translate({value}, '.', '/') AS {name}_text" for name, value in dates.items())
            if dmy
            else ""
        )
        numbers = ""
        dob, registered = (
            ("", "", f"{date_cast_sql(job, f't.{name}_text' if dmy else value, slashed=dmy)} AS {name}")
            for name, value in dates.items()
        )
    else:
        dob = date_steps(job, "t.date_of_birth", "dob")
        registered = date_steps(job, "t.registration_date", "registered")
        cut, numbers = f", {dob[0]}, {registered[0]}", f", {dob[1]}, {registered[1]}"
    return f"""SELECT n.* FROM (
                SELECT u.*, COALESCE(
                    date_part('year', u.dob)::int,
                    CASE WHEN u.birth_year ~ '^[0-9]{{4}}$' THEN u.birth_year::int END
                ) AS born_year
                FROM (
                SELECT {", ".join("t." + c for c in NORM_TEXT_COLUMNS)}, p.id AS precinct_id,
                       pa.id AS party_id, {dob[2]}, {registered[2]}
                FROM (
                SELECT t.*{numbers} FROM (
                SELECT t.*{cut} FROM (
                    SELECT {line} AS line, upper({v["state_voter_id"]}) AS state_voter_id,
                           {v["last_name"]} AS last_name, {v["first_name"]} AS first_name,
                           {v["middle_name"]} AS middle_name, {v["date_of_birth"]} AS date_of_birth,
                           {v["birth_year"]} AS birth_year,
                           {v["address"]} AS address, {v["city"]} AS city,
                           {v["postal_code"]} AS postal_code,
                           {precinct} AS precinct, {party} AS party,
                           {status} AS status, {v["registration_date"]} AS registration_date,
                           {v["precinct_name"]} AS precinct_name
                    FROM {stage_table} s
                    OFFSET 0  -- fences: each step is worked out once per row, not once per use above
                ) t OFFSET 0) t OFFSET 0) t
                LEFT JOIN {precincts} p ON p.code = t.precinct
                LEFT JOIN {parties} pa ON pa.abbreviation = t.party
                OFFSET 0
                ) u
            ) n"""


async def drop_tables(tables: tuple[str, ...] | list[str]) -> None:
    """Drop an import's scratch tables (those that exist), in one transaction."""
    async with database().engine.connect() as conn:
        for table in tables:
            await conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        await conn.commit()


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

    at_once = asyncio.Semaphore(STAGE_PARTS)
    reading = DateReading()

    async def normalise_each(part: StagedPart) -> None:
        async with at_once, engine.connect() as conn:
            await normalise_part(conn, job, part, norm, reading=reading)
            await conn.exec_driver_sql(f"DROP TABLE {part.table}")
            await conn.commit()

    await asyncio.gather(*(normalise_each(part) for part in parts))


@dataclass
class DateReading:
    """How a file's parts read their dates: by the quick cast (`date_cast_sql`) until it refuses
    one, then the careful way (`date_steps`) for the parts still to come. (A file that writes an
    unknown date as 00/00/0000 would otherwise read every part twice. With one impossible date
    every 40,000 lines of 1,000,000, normalising without this took 3.84 s against 3.07 s.)"""

    quick: bool = True


async def normalise_part(
    conn: AsyncConnection,
    job: ImportJob,
    part: StagedPart,
    table: str,
    lookups: Lookups | None = None,
    *,
    reading: DateReading,
    first: str | None = None,
) -> None:
    """Write one staged part's normalised rows into `table`, in a transaction of its own (begun
    here, with `first`, a statement of its own, if given): its dates read by the quick cast, or,
    when the cast refuses one of them, the part once more with the reader that never fails (the
    transaction rolled back and begun again: `first` too)."""
    for quick in (True, False) if reading.quick else (False,):
        await conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
        await conn.exec_driver_sql(f"SET LOCAL DateStyle = '{DATE_STYLES[job.date_format]}'")
        if first:
            await conn.exec_driver_sql(first)
        try:
            await conn.exec_driver_sql(
                f"INSERT INTO {table} {normalise_query(job, part, lookups, quick=quick)}"
            )
            return
        except DBAPIError as error:
            if not quick or not str(getattr(error.orig, "sqlstate", "")).startswith(DATA_EXCEPTION):
                raise
            reading.quick = False
            start, end = part.lines
            log.info(
                "import %s: lines %s-%s read again the careful way (the date cast refused a value: %s)",
                job.id, start, end - 1, error.orig,
            )  # fmt: skip
            await conn.rollback()


async def normalise_as_loaded(
    job: ImportJob, parts: list[StagedPart], beside: Beside, then: Callable[[str], Awaitable[None]]
) -> None:
    """A first load's normalising (`Beside.first_load`): the parts one after another on one core,
    each handed to the load on the other core as soon as it is written, so that the load starts
    with the first part. The normalised rows are a table partitioned by line, a partition for each
    part; the precincts and parties are read from the copies the load made of them under its lock
    (it holds the tables themselves until the check's verdict). `then(partition)` follows each
    part's normalising (the checks of each row on their own, while the load writes it)."""
    norm = _norm_table(job.id)
    lookups = _lookup_tables(job.id)
    reading = DateReading()
    async with database().engine.connect() as conn:
        await conn.exec_driver_sql(f"DROP TABLE IF EXISTS {norm}")
        await conn.exec_driver_sql(
            f"CREATE UNLOGGED TABLE {norm}_shape AS {normalise_query(job, parts[0], lookups)} WITH NO DATA"
        )
        await conn.exec_driver_sql(f"CREATE TABLE {norm} (LIKE {norm}_shape) PARTITION BY RANGE (line)")
        await conn.exec_driver_sql(f"DROP TABLE {norm}_shape")
        await conn.commit()
        for number, part in enumerate(parts):
            if not part.rows:
                continue
            partition = f"{norm}_{number}"
            start, end = part.lines
            create = (
                f"CREATE UNLOGGED TABLE {partition} PARTITION OF {norm} FOR VALUES FROM ({start}) TO ({end})"
            )
            await normalise_part(conn, job, part, partition, lookups, reading=reading, first=create)
            await conn.exec_driver_sql(f"DROP TABLE {part.table}")
            await conn.commit()
            beside.normalised(partition)
            await then(partition)
    beside.normalised(None)


def check_statements(job: ImportJob, *, roll_empty: bool = False, rows: str | None = None) -> dict[str, str]:
    """The statements that write a checked file's issues, by name (independent of each other).
    `roll_empty`: for a first load, which holds the roll empty (none compares the file with it).
    `rows`: the table of normalised rows they read, by default the job's."""
    norm = rows or _norm_table(job.id)
    checks = _checks(job)
    # A row breaks a rule: then (only) its reasons are worked out one by one.
    any_bad = " OR ".join(f"COALESCE({failed}, false)" for _, failed, _ in checks)
    reasons = ",\n".join(
        f"(:label_{key}, left(n.{key}, 200), {reason}, COALESCE({failed}, false))"
        for key, failed, reason in checks
    )
    statements = {
        "rules": f"""INSERT INTO import_issue (job_id, kind, line, column_name, value, reason)
            SELECT {job.id}, 'error', n.line, c.col, COALESCE(c.val, ''), c.reason
            FROM {norm} n, LATERAL (VALUES {reasons}) AS c(col, val, reason, failed)
            WHERE ({any_bad}) AND c.failed""",
        # (Its own statement: it reads the roll, see ROLL_CHECKS.) On an update a blank keeps
        # the stored date; a new voter's registration date is never made up.
        "new_unregistered": f"""INSERT INTO import_issue (job_id, kind, line, column_name, value, reason)
            SELECT {job.id}, 'error', n.line, :label_registration_date, '',
                   'is blank: a new voter needs the date they registered'
            FROM {norm} n
            WHERE n.registered IS NULL AND n.registration_date IS NULL{
            ""
            if roll_empty
            else " AND NOT EXISTS (SELECT 1 FROM voter v WHERE v.state_voter_id = n.state_voter_id)"
        }""",
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
              ON o.last_key = lower(n.last_name) AND o.first_key = lower(n.first_name)
             AND o.birth_year = n.born_year AND o.state_voter_id <> n.state_voter_id
             AND (o.date_of_birth = n.dob OR o.date_of_birth IS NULL OR n.dob IS NULL)
            GROUP BY n.line, n.state_voter_id""",
        "like_file": f"""INSERT INTO import_issue (job_id, kind, line, column_name, value, reason)
            SELECT {job.id}, 'duplicate', n.line, :label_state_voter_id, n.state_voter_id,
                   CASE WHEN d.strong THEN '{STRONG} line ' ELSE '{WEAK} line ' END || d.first
                   || CASE WHEN d.strong THEN '' ELSE '{WEAK_NOTE}' END
            FROM (SELECT lower(last_name) AS last_key, lower(first_name) AS first_key, born_year, dob,
                         min(line) AS first,
                         dob IS NOT NULL AS strong
                  FROM {norm} WHERE born_year IS NOT NULL
                  GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d
            JOIN {norm} n
              ON lower(n.last_name) = d.last_key AND lower(n.first_name) = d.first_key
             AND n.born_year = d.born_year AND n.dob IS NOT DISTINCT FROM d.dob
            WHERE n.line > d.first""",
    }
    if roll_empty:
        del statements["like_roll"]
    return statements


# From this many rows a file is compared with the roll in one pass over the roll, not a probe per row.
HASH_JOIN_ROWS = 20_000


async def _any_error(job_id: int) -> bool:
    async with transaction() as db:
        found = text("SELECT EXISTS (SELECT 1 FROM import_issue WHERE job_id = :j AND kind = 'error')")
        return bool(await db.scalar(found, {"j": job_id}))


BESIDE_LOCK_TIMEOUT = "30s"

# The checks that read the roll. A load run alongside the check (`validate`'s `alongside`) may be a
# bulk load, which locks the roll (and the precincts, parties and accounts its foreign keys point
# to) from its start until the verdict: these run before it starts; the others read the file only.
ROLL_CHECKS = ("like_roll", "new_unregistered")
# The checks of each row on its own (for a first load, whose roll is empty: see `Beside.first_load`).
ROW_CHECKS = ("rules", "new_unregistered")


async def _load_as_normalised(job: ImportJob, beside: Beside, rows: int) -> bool:
    """Whether the load beside the check takes a first load's way (`Beside.first_load`); if so, the
    copies of the precincts and parties it read under its lock are written for the normalising."""
    found = await beside.first_load(rows)
    if found is None:
        return False
    async with database().engine.connect() as conn:
        for table, key, pairs in zip(_lookup_tables(job.id), ("code", "abbreviation"), found, strict=True):
            await conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
            await conn.execute(
                text(
                    f"CREATE UNLOGGED TABLE {table} AS SELECT * FROM"
                    f" unnest(CAST(:ids AS int[]), CAST(:keys AS text[])) AS t(id, {key})"
                ),
                {"ids": [pair[0] for pair in pairs], "keys": [pair[1] for pair in pairs]},
            )
        await conn.commit()
    return True


async def validate(
    job: ImportJob,
    progress: Progress,
    parts: list[StagedPart],
    *,
    alongside: Beside | None = None,
) -> dict[str, int]:
    """Check every staged row; write issues; return the counts. `alongside`: the CLI's load beside
    the check, to be committed only if the check passes. It starts once the roll has been read
    (the voters on it counted, the checks that read it done), before the rest of the checks; or,
    for a first load (`Beside.first_load`), before the normalising, which hands it each part."""
    norm = _norm_table(job.id)
    total = sum(part.rows for part in parts)
    async with transaction() as db:
        await db.execute(delete(ImportIssue).where(ImportIssue.job_id == job.id))
    await progress(
        status="validating", phase="Checking every row", progress=0.45, rows_done=total, force=True
    )
    labels = {f"label_{key}": _label(job, key) for key in FIELDS}
    first_load = alongside is not None and await _load_as_normalised(job, alongside, total)

    async def run(name: str, statement: str, *, logged: bool = True) -> None:
        async with transaction() as db:
            # The file's rows are grouped in memory; a fresh table has no statistics, and the
            # planner would sort a million rows to join a few hundred groups back to them.
            await db.execute(text("SET LOCAL work_mem = '256MB'"))
            await db.execute(text("SET LOCAL enable_mergejoin = off"))
            # Compiling these statements' expressions (JIT) took longer than it saved: 0.4 s of the
            # same-name check's 1.65 s at 1,000,000 rows.
            await db.execute(text("SET LOCAL jit = off"))
            if alongside is not None:
                # The load has (or will soon have) the other core. (Over a plain table of a
                # million normalised rows, a parallel plan of the same-name check built its whole
                # hash in each of three processes: 2.9 s on both cores, against 2.3 s on one.)
                await db.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
            if name == "like_roll" and total > HASH_JOIN_ROWS:
                # One index probe per row of the file reads every voter of that name from the
                # heap: 5.5 s for 100,000 rows against a roll of 1,000,000, where one pass over
                # the roll takes 1.1 s. (The planner counts the probes cheap.)
                await db.execute(text("SET LOCAL enable_nestloop = off"))
            if alongside is not None and (first_load or name not in ROLL_CHECKS):
                # Beside a load that may hold the roll, the precincts, the parties and the
                # accounts until this check's verdict: a statement that waited for one of them
                # would wait forever (PostgreSQL sees no deadlock in a wait on our verdict).
                await db.execute(text(f"SET LOCAL lock_timeout = '{BESIDE_LOCK_TIMEOUT}'"))
            with timed(job.id, f"the check {name}") if logged else nullcontext():
                await db.execute(text(statement), {k: v for k, v in labels.items() if f":{k}" in statement})

    if first_load:
        assert alongside is not None

        parts_done = []

        async def check_rows(partition: str) -> None:
            part_statements = check_statements(job, roll_empty=True, rows=partition)
            for name in ROW_CHECKS:
                await run(name, part_statements[name], logged=False)
            parts_done.append(partition)  # (and the job's heartbeat, part by part)
            await progress(phase="Checking every row", progress=0.45 + 0.15 * len(parts_done) / len(parts))

        try:
            with timed(job.id, "normalising and checking each row (each part loaded once written)"):
                await normalise_as_loaded(job, parts, alongside, then=check_rows)
        finally:
            try:
                await drop_tables(_lookup_tables(job.id))
            except Exception as error:  # (the database gone: drop_stage or expiry drops them later)
                log.warning("import %s: could not drop the lookup tables: %s", job.id, error)
    else:
        with timed(job.id, "normalising"):
            await normalise(job, parts)
    await progress(phase="Checking every row", progress=0.6, force=True)
    statements = check_statements(job, roll_empty=first_load)

    async def on_roll() -> int:
        async with transaction() as db:
            found = await db.scalar(
                text(f"SELECT count(*) FROM {norm} n JOIN voter o USING (state_voter_id)")
            )
            return int(found or 0)

    with timed(job.id, "the checks"):
        if first_load:  # (the load holds the roll empty: no voter of the file is on it)
            assert alongside is not None
            existing = 0
            for name in ROW_CHECKS:  # (done part by part)
                del statements[name]
            same_id = statements.pop("same_id")
            for item in statements.items():  # (one after another, beside the load)
                await run(*item)
            # A load that has written every row of the file into the empty roll, under the roll's
            # unique voter ID, shows that no ID is repeated in the file.
            if not alongside.wrote_every_row:
                await run("same_id", same_id)
        elif alongside is None:  # (independent statements: one core each)
            counted = asyncio.create_task(on_roll())
            await asyncio.gather(counted, *(run(*item) for item in statements.items()))
            existing = counted.result()
        else:
            roll_statements = {name: statements.pop(name) for name in ROLL_CHECKS}
            counted = asyncio.create_task(on_roll())
            await asyncio.gather(counted, *(run(*item) for item in roll_statements.items()))
            existing = counted.result()
            if await _any_error(job.id):  # (a load now could only be withdrawn)
                await asyncio.gather(*(run(*item) for item in statements.items()))
            else:
                alongside.start(total - existing)
                # The load writes on one core; the checks take turns on the other (side by side
                # they slowed the load's write by a fifth, and they end well before it anyway).
                for item in statements.items():
                    await run(*item)
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
    return {
        "rows": total,
        "errors": errors,
        "duplicates": duplicates,
        "weak_duplicates": weak,
        "new": total - existing,
        "updated": existing,
        # (compared with an empty roll, held empty by the load: see `load_file`)
        **({"checked_on_empty_roll": True} if first_load else {}),
    }
