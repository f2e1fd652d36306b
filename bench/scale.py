"""A statewide roll: 10,000,000 voters over 10,000 precincts (`make bench-scale`, not part of `make bench`).

One scratch database (dropped at the end, whatever happens), in this order:

1. Import, while the roll is empty: 10,000 precincts and the parties in SQL, a 10,000,000-row CSV in
   the import's default columns (portal.demo.voterfile, as bench/imports.py writes it; not timed) in
   a temporary directory, then `flask --app wsgi import-voters FILE` as its own process: wall seconds
   and peak RSS (the process and its children, sampled every 20 ms; bench/imports.py's run_measured).
   The file is deleted and the roll truncated afterwards.
2. The roll, in SQL (generate_series, as bench/reports.py): 10,000,000 voters with the demo's names,
   streets and cities (portal.demo.names, so searches meet the mix bench/voters.py meets), 90% active,
   7% inactive, 3% removed, 80% with a party, spread evenly over the precincts. (Status follows
   g mod 100 and the precinct (g - 1) mod PRECINCTS, so with 10,000 precincts 1,000 of them hold
   only inactive and removed voters: the counts read every voter either way.) The roll's and the
   check-ins' secondary indexes and foreign keys are set aside for the insert and rebuilt after it
   (PostgreSQL's "Populating a Database"; the import does the same). One open election counting
   Election Day on every precinct: 5 contests x 4 candidates, a verified return for every precinct
   and contest (entered by one user, verified by another), and 8,000,000 check-ins (4 voters in 5).
   Then VACUUM ANALYZE and a CHECKPOINT.
3. Over HTTP against gunicorn (common.gunicorn: one gthread worker, 8 threads, on 127.0.0.1), signed
   in through the real login form, one request at a time, 50 warm-up requests before each series:
   - voter search: bench/voters.py's 600 varied searches (the same generator and seed), htmx fragment;
   - deep page: bench/voters.py's 500 keyset pages around 89.9% of the roll (its row 899,000 of
     1,000,000), sorted by name, voter ID and newest registration;
   - check-in desk search: 300 x GET /check-in?election=E&q=<last> <first> (htmx, as the desk's search
     box sends it; bench/checkin_load.py's request), names sampled from the roll;
   - the precinct list: 300 x GET /precincts?page=N (htmx), random pages over all 200, every sort;
   - turnout report page and NIST export of the open election: a warm-up, then 3 requests, median;
   - the streaming voter export (GET /voters/export.csv, the whole roll): seconds, rows, and the
     worker's peak RSS, sampled every 20 ms.
4. pg_database_size and the biggest relations.

Figures go to bench/results/scale.json, with the machine's load average before and after (another
session may be running the tests on the same machine). Sizes for smoke tests are environment
variables: BENCH_SCALE_VOTERS (10,000,000), BENCH_SCALE_PRECINCTS (10,000), BENCH_SCALE_IMPORT_ROWS
(= voters; 0 skips the import), BENCH_SCALE_DATABASE (tally_bench_scale), BENCH_SCALE_SKIP_EXPORT,
BENCH_SCALE_KEEP (the database is left behind for a look: drop it yourself).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import psutil
from common import flask_cli, gunicorn, load, migrate, scratch_database, search_params, sign_in, write_results
from imports import run_measured
from sqlalchemy.engine import make_url

VOTERS = int(os.environ.get("BENCH_SCALE_VOTERS", 10_000_000))
PRECINCTS = int(os.environ.get("BENCH_SCALE_PRECINCTS", 10_000))
IMPORT_ROWS = int(os.environ.get("BENCH_SCALE_IMPORT_ROWS", VOTERS))
DATABASE = os.environ.get("BENCH_SCALE_DATABASE", "tally_bench_scale")
SKIP_EXPORT = bool(os.environ.get("BENCH_SCALE_SKIP_EXPORT"))
KEEP = bool(os.environ.get("BENCH_SCALE_KEEP"))  # leave the database for a look (drop it yourself)
CHECKIN_SHARE = (4, 5)  # voters with id % 5 < 4 are checked in: 8,000,000 of 10,000,000
CONTESTS, CANDIDATES = 5, 4
SEARCHES, DEEP_PAGES, DESK_SEARCHES, PRECINCT_PAGES, WARM_UP = 600, 500, 300, 300, 50
DEEP_SHARE = 0.899  # bench/voters.py pages around row 899,000 of 1,000,000
PASSWORD = "bench password 123"
TARGETS = {
    "search_p95_ms": 20,
    "deep_page_p95_ms": 20,
    "desk_search_p95_ms": 20,
    "turnout_seconds": 3,
    "nist_seconds": 3,
    "import_seconds": 180,
    "import_peak_rss_mb": 300,
    "export_peak_rss_mb": 300,
}
PARTIES = [
    ("Democratic Party", "DEM"),
    ("Republican Party", "REP"),
    ("Libertarian Party", "LIB"),
    ("Green Party", "GRN"),
    ("Independent", "IND"),
]


def sql_array(values) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def roll_sql() -> str:
    """10,000,000 voters in one INSERT: a multiplicative hash of g picks each name, street, city and
    date, so neighbours in the id order do not share them."""
    from portal.demo.names import CITIES, FIRST_NAMES, LAST_NAMES, STREET_KINDS, STREETS

    lasts, firsts = sql_array(LAST_NAMES), sql_array(FIRST_NAMES)
    streets, kinds = sql_array(STREETS), sql_array(STREET_KINDS)
    cities, postals = sql_array([c for c, _ in CITIES]), sql_array([p for _, p in CITIES])
    nl, nf, ns, nk, nc = len(LAST_NAMES), len(FIRST_NAMES), len(STREETS), len(STREET_KINDS), len(CITIES)
    return (
        "INSERT INTO voter (state_voter_id, first_name, middle_name, last_name, date_of_birth, birth_year,"
        " address, city, postal_code, precinct_id, party_id, status, registration_date, last_voted_on)"
        " SELECT 'V' || lpad(g::text, 9, '0'),"
        f" ({firsts})[(1 + (h / {nl}) % {nf})::int], chr((65 + (h / 7) % 26)::int),"
        f" ({lasts})[(1 + h % {nl})::int], born, extract(year FROM born),"
        f" (1 + (h / 13) % 9998) || ' ' || ({streets})[(1 + (h / 17) % {ns})::int] || ' ' || ({kinds})[(1 + (h / 19) % {nk})::int],"
        f" ({cities})[(1 + (h / 23) % {nc})::int], ({postals})[(1 + (h / 23) % {nc})::int],"
        f" p0 + (g - 1) % {PRECINCTS},"
        " CASE WHEN h % 100 < 20 THEN NULL ELSE r0 + (h / 29) % 5 END,"
        " CASE WHEN g % 100 < 90 THEN 'active' WHEN g % 100 < 97 THEN 'inactive' ELSE 'removed' END,"
        " least(greatest(born + 6575, date '1970-01-01') + ((h / 31) % 3000)::int, date '2026-11-01'),"
        " CASE WHEN (h / 37) % 100 < 62 THEN date '2024-11-05' END"
        f" FROM generate_series(1, {VOTERS}) g,"
        " LATERAL (SELECT (g * 2654435761) % 4294967296 AS h) x,"
        " LATERAL (SELECT date '1935-01-01' + ((h / 41) % 26645)::int AS born) b,"
        " (SELECT min(id) AS p0 FROM precinct) p, (SELECT min(id) AS r0 FROM party) r"
    )


def election_sql(name: str) -> list[str]:
    """One open election on every precinct counting Election Day: CONTESTS x CANDIDATES, a verified
    return for every precinct and contest (entered by the first user, verified by the last)."""
    e = f"(SELECT id FROM election WHERE name = '{name}')"
    ballots = 400
    return [
        f"INSERT INTO election (name, election_date, kind, status) VALUES ('{name}', '2026-11-03', 'general', 'open')",
        f"INSERT INTO counting_group SELECT {e}, 'election_day'",
        f"INSERT INTO election_precinct SELECT {e}, id FROM precinct",
        f"INSERT INTO contest (election_id, office_title, vote_for, ballot_order) SELECT {e}, 'Contest ' || g, 1, g FROM generate_series(1, {CONTESTS}) g",
        f"INSERT INTO contest_precinct SELECT c.id, p.id FROM contest c, precinct p WHERE c.election_id = {e}",
        f"INSERT INTO candidate (contest_id, election_id, code, ballot_name, ballot_order) SELECT c.id, c.election_id, 'C' || c.id || '-' || g, 'Candidate ' || c.id || '.' || g, g FROM contest c, generate_series(1, {CANDIDATES}) g WHERE c.election_id = {e}",
        "INSERT INTO precinct_return (election_id, precinct_id, contest_id, method, revision, ballots_cast, overvotes, undervotes, status, entered_by_id, verified_by_id, verified_at) "
        f"SELECT c.election_id, p.id, c.id, 'election_day', 1, {ballots}, 0, 0, 'verified', (SELECT min(id) FROM user_account), (SELECT max(id) FROM user_account), now() "
        f"FROM precinct p, contest c WHERE c.election_id = {e}",
        f"INSERT INTO return_vote SELECT r.id, k.id, {ballots // CANDIDATES} FROM precinct_return r JOIN candidate k ON k.contest_id = r.contest_id WHERE r.election_id = {e}",
    ]


def checkins_sql(name: str) -> str:
    keep, of = CHECKIN_SHARE
    return (
        "INSERT INTO check_in (voter_id, election_id, precinct_id, method, user_id) "
        f"SELECT v.id, (SELECT id FROM election WHERE name = '{name}'), v.precinct_id,"
        " (ARRAY['in_person','early','mail','in_person','early'])[1 + v.id % 5],"
        f" (SELECT min(id) FROM user_account) FROM voter v WHERE v.id % {of} < {keep}"
    )


def bulk(conn, table: str, statement: str) -> float:
    """`statement` with `table`'s secondary indexes (those behind no constraint) and foreign keys set
    aside, then rebuilt: seconds."""
    started = time.perf_counter()
    indexes = conn.fetch(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " WHERE i.indrelid = $1::regclass AND NOT i.indisprimary"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        table,
    )
    keys = conn.fetch(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = $1::regclass AND contype = 'f'",
        table,
    )
    for name, _ in keys:
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    conn.execute(statement)
    for _, definition in indexes:
        conn.execute(definition)
    for name, definition in keys:
        conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    return time.perf_counter() - started


class Db:
    """A plain asyncpg connection (autocommit) used from synchronous code, on a loop of its own."""

    def __init__(self, url: str):
        import asyncio

        import asyncpg

        parsed = make_url(url)
        self.loop = asyncio.new_event_loop()
        self.conn = self.loop.run_until_complete(
            asyncpg.connect(
                host=parsed.query.get("host") or parsed.host or "127.0.0.1",
                port=parsed.port or 5432,
                user=parsed.username or "postgres",
                password=parsed.password,
                database=parsed.database,
                command_timeout=None,
            )
        )

    def execute(self, sql: str, *args) -> None:
        self.loop.run_until_complete(self.conn.execute(sql, *args))

    def fetch(self, sql: str, *args) -> list:
        return [tuple(r) for r in self.loop.run_until_complete(self.conn.fetch(sql, *args))]

    def scalar(self, sql: str, *args):
        return self.loop.run_until_complete(self.conn.fetchval(sql, *args))

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def step(label: str, started: float) -> float:
    seconds = time.perf_counter() - started
    print(f"  {label}: {seconds:.1f} s", flush=True)
    return round(seconds, 1)


def load_average() -> str:
    """`uptime`'s load averages, with the CPUs to read them against."""
    one, five, fifteen = os.getloadavg()
    return f"{time.strftime('%H:%M:%S')} load average {one:.2f} {five:.2f} {fifteen:.2f} ({psutil.cpu_count()} CPUs)"


# Set-up ---------------------------------------------------------------------------------------------


def base_rows(conn) -> None:
    conn.execute(
        "INSERT INTO precinct (code, name) SELECT 'P' || lpad(g::text, 5, '0'), 'Precinct ' || g"
        f" FROM generate_series(1, {PRECINCTS}) g"
    )
    for name, abbreviation in PARTIES:
        conn.execute("INSERT INTO party (name, abbreviation) VALUES ($1, $2)", name, abbreviation)


def run_import(url: str, workdir: Path) -> dict:
    from portal.demo.voterfile import write_voter_csv

    codes = [f"P{g:05d}" for g in range(1, PRECINCTS + 1)]
    path = workdir / "statewide.csv"
    started = time.perf_counter()
    write_voter_csv(path, IMPORT_ROWS, precinct_codes=codes, party_abbreviations=[a for _, a in PARTIES])
    size_mb = path.stat().st_size / (1 << 20)
    print(
        f"  wrote {IMPORT_ROWS:,} rows ({size_mb:,.0f} MB) in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    env = {**os.environ, "PORTAL_DATABASE_URL": url}
    seconds, peak_mb, result = run_measured(
        [sys.executable, "-m", "flask", "--app", "wsgi", "import-voters", str(path)], env
    )
    path.unlink()
    print(result.stdout.strip()[-1000:], result.stderr.strip()[-2000:], sep="\n", flush=True)
    if result.returncode != 0:
        raise SystemExit(f"the import failed with exit code {result.returncode}")
    print(f"  import: {seconds:.1f} s, peak RSS {peak_mb:.0f} MB", flush=True)
    return {
        "import_rows": IMPORT_ROWS,
        "import_file_mb": round(size_mb, 1),
        "import_seconds": round(seconds, 1),
        "import_peak_rss_mb": round(peak_mb, 1),
    }


def seed(url: str) -> tuple[int, dict]:
    """The roll, the election, its returns and check-ins; VACUUM ANALYZE; (election id, seconds)."""
    seconds = {}
    name = "Statewide General 2026"
    with Db(url) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        started = time.perf_counter()
        seconds["roll"] = round(bulk(conn, "voter", roll_sql()), 1)
        print(f"  roll: {seconds['roll']} s", flush=True)
        started = time.perf_counter()
        for statement in election_sql(name):
            conn.execute(statement)
        seconds["election_and_returns"] = step("election and returns", started)
        seconds["check_ins"] = round(bulk(conn, "check_in", checkins_sql(name)), 1)
        print(f"  check-ins: {seconds['check_ins']} s", flush=True)
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
        seconds["vacuum_analyze"] = step("VACUUM ANALYZE", started)
        election = conn.scalar("SELECT id FROM election WHERE name = $1", name)
    return election, seconds


# What the requests ask for -------------------------------------------------------------------------


def samples(url: str) -> tuple[list, list[str], dict[str, list[str]]]:
    """Names, addresses and precinct codes from the roll, and keyset cursors deep in it (as
    bench/voters.py takes them)."""
    from portal.voters.search import encode_cursor

    deep_offset = int(VOTERS * DEEP_SHARE)
    with Db(url) as conn:
        names = conn.fetch(
            "SELECT last_name, first_name, state_voter_id, address FROM voter TABLESAMPLE SYSTEM (0.1) LIMIT 400"
        )
        if len(names) < 400:  # a small roll
            names = conn.fetch(
                "SELECT last_name, first_name, state_voter_id, address FROM voter ORDER BY random() LIMIT 400"
            )
        precincts = [r[0] for r in conn.fetch("SELECT code FROM precinct ORDER BY random() LIMIT 50")]
        deep = {}
        for sort, key in (
            ("name", "last_key, first_key, id"),
            ("voter_id", "state_voter_id"),
            ("-registered", "registration_date DESC, id DESC"),
        ):
            rows = conn.fetch(
                f"SELECT {key.replace(' DESC', '')} FROM voter ORDER BY {key} OFFSET {deep_offset} LIMIT 2000"
            )
            deep[sort] = [encode_cursor(list(r)) for r in rows[::4]]
    return names, precincts, deep


def paths(prefix: str, params_list: list[dict]) -> list[str]:
    return [f"{prefix}?{urllib.parse.urlencode(p)}" for p in params_list]


# Measuring -----------------------------------------------------------------------------------------

HTMX = {"HX-Request": "true"}


def series(base: str, cookie: str, label: str, path_list: list[str]) -> dict:
    """One request at a time (latency, not throughput), after WARM_UP requests of the same kind."""
    load(base, path_list[:WARM_UP], cookie=cookie, total=WARM_UP, concurrency=1, headers=HTMX)
    result = load(base, path_list, cookie=cookie, total=len(path_list), concurrency=1, headers=HTMX)
    print(
        f"  {label}: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, errors {result['errors']}",
        flush=True,
    )
    if result["errors"]:
        print(f"    {result['sample_errors']}", flush=True)
    return result


def get_timed(base: str, cookie: str, path: str, repeat: int = 3) -> dict:
    """A warm-up, then `repeat` GETs of a whole report: median and maximum seconds, bytes."""
    host, port = urllib.parse.urlsplit(base).netloc.split(":")
    times, size = [], 0
    for n in range(repeat + 1):
        conn = http.client.HTTPConnection(host, int(port), timeout=600)
        started = time.perf_counter()
        conn.request("GET", path, headers={"Cookie": cookie})
        response = conn.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        conn.close()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {body[:300]!r}")
        size = len(body)
        if n:
            times.append(elapsed)
    return {"seconds": round(statistics.median(times), 2), "max_seconds": round(max(times), 2), "bytes": size}


def export_measured(base: str, cookie: str, worker: psutil.Process) -> dict:
    """The whole roll through GET /voters/export.csv, read as it streams; the worker's RSS every 20 ms."""
    host, port = urllib.parse.urlsplit(base).netloc.split(":")
    before = worker.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                peak[0] = max(peak[0], worker.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    size = lines = 0
    first_byte = None
    try:
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        started = time.perf_counter()
        conn.request("GET", "/voters/export.csv", headers={"Cookie": cookie})
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"export: {response.status} {response.read()[:300]!r}")
        while chunk := response.read(1 << 20):
            if first_byte is None:
                first_byte = time.perf_counter() - started
            size += len(chunk)
            lines += chunk.count(b"\n")
        seconds = time.perf_counter() - started
        conn.close()
    finally:
        done.set()
        sampler.join()
    return {
        "export_rows": lines - 1,
        "export_mb": round(size / (1 << 20), 1),
        "export_seconds": round(seconds, 1),
        "export_first_byte_seconds": round(first_byte or 0, 3),
        "export_rows_per_second": round((lines - 1) / seconds),
        "export_worker_rss_before_mb": round(before / (1 << 20), 1),
        "export_peak_rss_mb": round(peak[0] / (1 << 20), 1),
    }


def sizes(url: str) -> dict:
    with Db(url) as conn:
        database = conn.scalar("SELECT pg_database_size(current_database())")
        relations = conn.fetch(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relkind = 'r'"
            " AND relnamespace = 'public'::regnamespace ORDER BY 2 DESC LIMIT 4"
        )
        voter_indexes = conn.scalar("SELECT pg_indexes_size('voter')")
    gb = 1 << 30
    return {
        "database_size_gb": round(database / gb, 2),
        "largest_relations_gb": {name: round(size / gb, 2) for name, size in relations},
        "voter_indexes_gb": round(voter_indexes / gb, 2),
    }


def measure(url: str, election: int, rng: random.Random) -> dict:
    names, precincts, deep = samples(url)
    searches = paths("/voters", search_params(rng, names, precincts, SEARCHES))
    deep_pages = []
    for n in range(DEEP_PAGES):
        sort = ["name", "voter_id", "-registered"][n % 3]
        deep_pages.append({"sort": sort, "after": rng.choice(deep[sort])})
    desk = paths(
        "/check-in",
        [{"election": election, "q": f"{last.lower()} {first.lower()}"} for last, first, _, _ in names],
    )
    pages = -(-PRECINCTS // 50)
    sorts = ["code", "-code", "name", "-name", "polling_place"]
    precinct_pages = paths(
        "/precincts",
        [{"page": rng.randint(1, pages), "sort": rng.choice(sorts)} for _ in range(PRECINCT_PAGES)],
    )
    figures = {}
    with gunicorn(url, workers=1, threads=8, env={"PORTAL_ACCESS_LOG": "/dev/null"}) as (base, process):
        worker = psutil.Process(process.pid).children()[0]
        clerk = sign_in(base, "scale-clerk", PASSWORD)
        admin = sign_in(base, "scale-admin", PASSWORD)
        figures["load_average_before_http"] = load_average()
        search = series(base, clerk, "voter search", searches)
        deep_result = series(base, clerk, "deep page", paths("/voters", deep_pages))
        desk_result = series(base, clerk, "check-in desk search", (desk * 2)[:DESK_SEARCHES])
        precinct_result = series(base, clerk, "precinct list", precinct_pages)
        for label, result in (
            ("search", search),
            ("deep_page", deep_result),
            ("desk_search", desk_result),
            ("precinct_list", precinct_result),
        ):
            figures |= {
                f"{label}_p95_ms": result["p95_ms"],
                f"{label}_p50_ms": result["p50_ms"],
                f"{label}_p99_ms": result["p99_ms"],
                f"{label}_requests": result["requests"],
                f"{label}_errors": result["errors"],
            }
        turnout = get_timed(base, admin, f"/elections/{election}/reports/turnout")
        print(f"  turnout report: {turnout}", flush=True)
        nist = get_timed(base, admin, f"/elections/{election}/reports/results.json")
        print(f"  NIST export: {nist}", flush=True)
        figures |= {
            "turnout_seconds": turnout["seconds"],
            "turnout_max_seconds": turnout["max_seconds"],
            "turnout_html_mb": round(turnout["bytes"] / (1 << 20), 1),
            "nist_seconds": nist["seconds"],
            "nist_max_seconds": nist["max_seconds"],
            "nist_json_mb": round(nist["bytes"] / (1 << 20), 1),
        }
        if not SKIP_EXPORT:
            exported = export_measured(base, admin, worker)
            print(f"  export: {exported}", flush=True)
            figures |= exported
        figures["load_average_after_http"] = load_average()
    return figures


def main() -> None:
    began = time.perf_counter()
    print(load_average(), flush=True)
    figures: dict = {"voters": VOTERS, "precincts": PRECINCTS, "load_average_at_start": load_average()}
    url = scratch_database(DATABASE)
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        for username, role in (
            ("scale-admin", "admin"),
            ("scale-clerk", "clerk"),
            ("scale-checker", "manager"),
        ):
            flask_cli(url, "create-user", username, "--role", role, "--password", PASSWORD)
        with Db(url) as conn:
            base_rows(conn)
        if IMPORT_ROWS:
            print(f"import of {IMPORT_ROWS:,} rows into the empty roll", flush=True)
            figures |= run_import(url, workdir)
            with Db(url) as conn:
                conn.execute("TRUNCATE voter RESTART IDENTITY CASCADE")
        print(f"seeding {VOTERS:,} voters over {PRECINCTS:,} precincts", flush=True)
        election, seeded = seed(url)
        figures["seed_seconds"] = seeded
        figures["check_ins"] = VOTERS * CHECKIN_SHARE[0] // CHECKIN_SHARE[1]
        print("measuring over HTTP", flush=True)
        figures |= measure(url, election, random.Random(7))
        figures |= sizes(url)
    finally:
        if KEEP:
            print(f"BENCH_SCALE_KEEP: {DATABASE} is left for you to drop", flush=True)
        else:
            migrate.drop_database(url)
        shutil.rmtree(workdir, ignore_errors=True)
    figures["load_average_at_end"] = load_average()
    figures["targets"] = {
        key: {
            "target": limit,
            "measured": figures.get(key),
            "met": figures.get(key) is not None and figures[key] <= limit,
        }
        for key, limit in TARGETS.items()
    }
    figures["all_targets_met"] = all(t["met"] for t in figures["targets"].values())
    figures["total_seconds"] = round(time.perf_counter() - began)
    figures["measured"] = (
        "one run; HTTP against gunicorn (1 gthread worker, 8 threads) on 127.0.0.1, signed in, one request "
        "at a time after 50 warm-up requests of each kind; searches, deep pages and precinct pages as htmx "
        "fragments; reports: median of 3 after a warm-up; export: the whole roll, worker RSS every 20 ms; "
        "import: flask import-voters as its own process into the empty roll, RSS of the process and its "
        "children every 20 ms. The machine is shared: see the load averages."
    )
    print(json.dumps(figures, indent=2))
    print(f"written to {write_results('scale', figures)}")


if __name__ == "__main__":
    sys.exit(main())
