"""Importing a 1,000,000-row voter CSV, checked and loaded, against `psql \\copy` of the same file.

A scratch database gets 2,000 precincts and the parties (no voters); a realistic CSV is written
(not timed); then `flask --app wsgi import-voters FILE` runs as its own process: its wall time and
peak RSS (sampled every 20 ms) are the import figures. The floor: `COPY` of the rows it loaded into
the real `voter` table with its secondary indexes and foreign keys dropped and rebuilt in the same
transaction (`copy_rebuild_seconds`), alternating with the import for BENCH_IMPORT_ROUNDS rounds
(default 3; medians). Also `psql \\copy` of the file into a bare table (no keys, no indexes: not a
fair floor), the same rows in North Carolina's layout, and a 100,000-row update. Figures merge into
bench/results/voters.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from common import ROOT, flask_cli, migrate, scratch_database, write_results
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", 1_000_000))
UPDATE_ROWS = ROWS // 10
ROUNDS = int(os.environ.get("BENCH_IMPORT_ROUNDS", 3))


async def _codes(url: str) -> tuple[list[str], list[str]]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        precincts = list(await conn.scalars(text("SELECT code FROM precinct ORDER BY id")))
        parties = list(await conn.scalars(text("SELECT abbreviation FROM party ORDER BY id")))
    await engine.dispose()
    return precincts, parties


def run_measured(command: list[str], env: dict) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall seconds and peak RSS (MB, the process and its children) of a command."""
    started = time.perf_counter()
    process = psutil.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = 0
    while process.poll() is None:
        try:
            rss = process.memory_info().rss + sum(
                c.memory_info().rss for c in process.children(recursive=True)
            )
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    out, err = process.communicate()
    return seconds, peak / (1 << 20), subprocess.CompletedProcess(command, process.returncode, out, err)


def psql_args(url: str) -> list[str]:
    psql = shutil.which("psql")
    if not psql:
        raise SystemExit("psql is needed for the comparison (apt-get install postgresql-client)")
    parsed = make_url(url)
    host = parsed.query.get("host") or parsed.host or "127.0.0.1"
    args = [
        psql,
        "-X",
        "-q",
        "-h",
        str(host),
        "-p",
        str(parsed.port or 5432),
        "-U",
        parsed.username or "postgres",
        "-d",
        parsed.database,
    ]
    return args


def quiet(url: str, limit: float = 120) -> None:
    """Start each timed step from the same state: the last step's writes checkpointed, and no
    autovacuum worker (woken by a million new rows) still busy on the database."""
    args = psql_args(url)
    subprocess.run([*args, "-qc", "CHECKPOINT"], check=True)
    waited = time.perf_counter()
    while time.perf_counter() - waited < limit:
        busy = subprocess.run(
            [*args, "-Atc", "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if busy == "0":
            return
        time.sleep(0.5)


def psql_copy_seconds(url: str, csv_path: Path) -> float:
    """`psql \\copy` of the file into a bare table (same columns, no keys or indexes)."""
    args = psql_args(url)
    columns = ", ".join(
        f"{name} {kind}"
        for name, kind in [
            ("state_voter_id", "varchar(20)"),
            ("last_name", "varchar(80)"),
            ("first_name", "varchar(80)"),
            ("middle_name", "varchar(80)"),
            ("date_of_birth", "date"),
            ("address", "varchar(200)"),
            ("city", "varchar(80)"),
            ("postal_code", "varchar(10)"),
            ("precinct", "varchar(16)"),
            ("party", "varchar(10)"),
            ("status", "varchar(16)"),
            ("registration_date", "date"),
        ]
    )
    subprocess.run(
        [*args, "-c", f"DROP TABLE IF EXISTS bare_copy; CREATE TABLE bare_copy ({columns})"], check=True
    )
    started = time.perf_counter()
    subprocess.run([*args, "-c", f"\\copy bare_copy FROM '{csv_path}' CSV HEADER"], check=True)
    return time.perf_counter() - started


VOTER_COPY_COLUMNS = (
    "state_voter_id, first_name, middle_name, last_name, date_of_birth, birth_year, address, city, "
    "postal_code, precinct_id, party_id, status, registration_date"
)


def copy_rebuild_seconds(url: str, workdir: Path) -> float:
    """The honest floor for a load into the roll: the rows the import just loaded, copied out,
    then `COPY` into the real `voter` table with its secondary indexes and foreign keys dropped and
    rebuilt in the same transaction (what the import's bulk load does). Leaves the roll empty."""
    args = psql_args(url)
    rows = workdir / "voter-rows.csv"
    subprocess.run(
        [*args, "-c", f"\\copy (SELECT {VOTER_COPY_COLUMNS} FROM voter) TO '{rows}' CSV"], check=True
    )

    def catalog(query: str) -> list[str]:
        out = subprocess.run([*args, "-At", "-c", query], check=True, capture_output=True, text=True).stdout
        return [line for line in out.splitlines() if line]

    indexes = catalog(
        "SELECT i.indexrelid::regclass::text || '|' || pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid = 'voter'::regclass AND NOT i.indisprimary AND NOT i.indisunique"
    )
    keys = catalog(
        "SELECT conname || '|' || pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'voter'::regclass AND contype = 'f'"
    )
    subprocess.run([*args, "-c", "TRUNCATE voter, check_in"], check=True)
    quiet(url)
    script = workdir / "copy-rebuild.sql"
    script.write_text(
        "BEGIN;\n"
        + "".join(f'ALTER TABLE voter DROP CONSTRAINT "{k.split("|")[0]}";\n' for k in keys)
        + "".join(f"DROP INDEX {i.split('|')[0]};\n" for i in indexes)
        + "SET LOCAL maintenance_work_mem = '256MB';\n"
        + f"\\copy voter ({VOTER_COPY_COLUMNS}) FROM '{rows}' CSV\n"
        + "".join(i.split("|", 1)[1] + ";\n" for i in indexes)
        + "".join(
            f'ALTER TABLE voter ADD CONSTRAINT "{k.split("|")[0]}" {k.split("|", 1)[1]};\n' for k in keys
        )
        + "COMMIT;\n"
    )
    started = time.perf_counter()
    subprocess.run([*args, "-v", "ON_ERROR_STOP=1", "-f", str(script)], check=True)
    seconds = time.perf_counter() - started
    subprocess.run([*args, "-c", "TRUNCATE voter, check_in"], check=True)
    return seconds


NC_STATUS = {"active": ("A", "ACTIVE"), "inactive": ("I", "INACTIVE"), "removed": ("R", "REMOVED")}


def write_nc_file(
    path: Path, count: int, precinct_codes: list[str], *, first: int = 0, seed: int = 11
) -> None:
    """`count` voters in North Carolina's ncvoter layout (67 columns, tab, every value quoted,
    CRLF, birth year only), with plausible values in the columns the import does not read."""
    import csv
    import random

    from portal.demo.seed import voter_records
    from portal.voters.layouts import LAYOUTS

    columns = LAYOUTS["nc-ncvoter"].columns
    parties = ["DEM", "REP", "LIB", "GRN", "IND"]
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow(columns)
        for n, record in enumerate(
            voter_records(rng, count, list(range(len(precinct_codes))), list(range(5)), first, 1), start=first
        ):
            _, first_name, middle, last, _, year, address, city, postal, precinct, party, status, reg, _ = (
                record
            )
            code, desc = NC_STATUS[status]
            row = {
                "county_id": "92", "county_desc": "WAKE", "voter_reg_num": f"{n:012d}", "ncid": f"BN{n:08d}",
                "last_name": last.upper(), "first_name": first_name.upper(), "middle_name": middle.upper(),
                "status_cd": code, "voter_status_desc": desc, "reason_cd": "AV",
                "voter_status_reason_desc": "VERIFIED", "res_street_address": address.upper(),
                "res_city_desc": city.upper(), "state_cd": "NC", "zip_code": postal,
                "mail_addr1": address.upper(), "mail_city": city.upper(), "mail_state": "NC",
                "mail_zipcode": postal, "confidential_ind": "N", "registr_dt": reg.strftime("%m/%d/%Y"),
                "race_code": "U", "ethnic_code": "UN", "party_cd": parties[party] if party is not None else "UNA",
                "gender_code": "U", "birth_year": str(year), "age_at_year_end": str(2026 - year),
                "birth_state": "NC", "drivers_lic": "Y", "precinct_abbrv": precinct_codes[precinct],
                "precinct_desc": f"PRECINCT {precinct_codes[precinct]}", "municipality_abbrv": "RAL",
                "municipality_desc": "RALEIGH", "cong_dist_abbrv": "2", "super_court_abbrv": "10A",
                "judic_dist_abbrv": "10", "nc_senate_abbrv": "15", "nc_house_abbrv": "34",
                "county_commiss_abbrv": "4", "county_commiss_desc": "COMMISSIONER DIST 4",
                "school_dist_abbrv": "6", "school_dist_desc": "SCHOOL DIST 6", "vtd_abbrv": precinct_codes[precinct],
                "vtd_desc": precinct_codes[precinct],
            }  # fmt: skip
            writer.writerow([row.get(c, "") for c in columns])


# `flask --app wsgi import-voters FILE`, with the import's INFO log (how long each phase took) on
WITH_PHASES = """
import logging, sys
logging.basicConfig(level=logging.WARNING, format="  %(message)s")
logging.getLogger("portal.voters.importing").setLevel(logging.INFO)
from flask.cli import main
sys.argv = ["flask", "--app", "wsgi", "import-voters", *sys.argv[1:]]
main()
"""


def import_measured(url: str, path: Path, label: str) -> tuple[float, float]:
    env = {**os.environ, "PORTAL_DATABASE_URL": url}
    quiet(url)
    seconds, peak_mb, result = run_measured([sys.executable, "-c", WITH_PHASES, str(path)], env)
    phases = [line for line in result.stderr.splitlines() if " took " in line]
    others = "\n".join(line for line in result.stderr.splitlines() if " took " not in line)
    print(result.stdout.strip(), *phases, others.strip()[-2000:], sep="\n")
    if result.returncode != 0:
        raise SystemExit(f"{label}: import failed with exit code {result.returncode}")
    print(f"{label}: {seconds:.2f} s, peak RSS {peak_mb:.0f} MB")
    return seconds, peak_mb


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[max(0, int(len(ordered) * p) - 1)], 2)


def update_with_searches(url: str, path: Path) -> tuple[float, list[float], list[float]]:
    """The 100,000-row update, and the roll's search meanwhile: the signed-in htmx fragment GET
    /voters through the Flask app in this process (bench/voters.py's searches), one after another:
    300 before the update, and the same 300 over and over while it runs. (update seconds, ms before,
    ms during)"""
    import random
    import threading

    from common import bench_app, search_params, search_samples, signed_in

    from portal import aio
    from portal.db import reading

    flask_cli(url, "create-user", "bench", "--role", "clerk", "--password", "bench password 123")
    app = bench_app(url)
    client = signed_in(app, "bench")

    async def sample():
        async with reading() as db:
            return await search_samples(db)

    with app.app_context():
        names, precincts = aio.run(sample())
    searches = search_params(random.Random(7), names, precincts, 350)

    def search(params: dict) -> float:
        started = time.perf_counter()
        response = client.get("/voters", query_string=params, headers={"HX-Request": "true"})
        if response.status_code != 200:
            raise RuntimeError(f"{params}: {response.status_code}")
        return (time.perf_counter() - started) * 1000

    # The roll as the NC import left it, settled (no autovacuum running, checkpointed) and warm:
    # the first pass after a million-row load reads the roll from disk (p95 130-180 ms against
    # 21-27 ms warm, with or without a VACUUM first). The same 300 searches are timed before and
    # during the update.
    quiet(url)
    timed = searches[50:350]
    for params in searches[:350]:
        search(params)
    before = [search(params) for params in timed]
    outcome: dict = {}
    update = threading.Thread(
        target=lambda: outcome.update(
            seconds=import_measured(url, path, "100k update (half new, half changed)")[0]
        )
    )
    update.start()
    during = []
    while update.is_alive():
        during.append(search(timed[len(during) % len(timed)]))
    update.join()
    with app.app_context():
        aio.run(database_dispose())
    print(
        f"search p95 before the update {percentile(before, 0.95)} ms, during it "
        f"{percentile(during, 0.95)} ms ({len(during)} searches)"
    )
    return outcome["seconds"], before, during


async def database_dispose() -> None:
    from portal.db import database

    await database().dispose()


def main() -> None:
    url = scratch_database("tally_bench_import")
    workdir = Path(tempfile.mkdtemp())
    try:
        flask_cli(
            url, "seed-demo", "--voters", "0", "--precincts", "2000", "--logins-file", str(workdir / "l.txt")
        )
        precincts, parties = asyncio.run(_codes(url))
        csv_path = workdir / "voters.csv"
        sys.path.insert(0, str(ROOT))
        from portal.demo.voterfile import write_voter_csv

        write_voter_csv(csv_path, ROWS, precinct_codes=precincts, party_abbreviations=parties)
        size_mb = csv_path.stat().st_size / (1 << 20)
        print(f"wrote {ROWS:,} rows ({size_mb:.0f} MB)")
        copy_seconds = psql_copy_seconds(url, csv_path)
        print(f"psql \\copy into a bare table: {copy_seconds:.2f} s")
        # Alternating rounds (the import, then the floor on the rows it loaded), each figure the
        # median: one run of either on this 2-core machine varies by 10-20%.
        imports, floors, peaks = [], [], []
        for round_number in range(1, ROUNDS + 1):
            seconds, peak_mb = import_measured(url, csv_path, f"round {round_number}: plain CSV, empty roll")
            rebuild = copy_rebuild_seconds(url, workdir)
            print(
                f"round {round_number}: COPY into voter, indexes and keys dropped and rebuilt: {rebuild:.2f} s"
            )
            imports.append(seconds)
            floors.append(rebuild)
            peaks.append(peak_mb)
        seconds, rebuild, peak_mb = statistics.median(imports), statistics.median(floors), max(peaks)
        print(f"medians: import {seconds:.2f} s, floor {rebuild:.2f} s, ratio {seconds / rebuild:.2f}")
        nc_path = workdir / "ncvoter_Statewide.txt"
        write_nc_file(nc_path, ROWS, precincts)
        nc_mb = nc_path.stat().st_size / (1 << 20)
        print(f"wrote {ROWS:,} rows in the ncvoter layout ({nc_mb:.0f} MB)")
        nc_seconds, nc_peak = import_measured(url, nc_path, "NC layout into an empty roll")
        update_path = workdir / "ncvoter_update.txt"
        write_nc_file(update_path, UPDATE_ROWS, precincts, first=ROWS - UPDATE_ROWS // 2, seed=12)
        update_seconds, search_before, search_during = update_with_searches(url, update_path)
        figures = {
            "import_rows": ROWS,
            "import_seconds": round(seconds, 2),
            "import_rounds_seconds": [round(x, 2) for x in imports],
            "copy_rebuild_rounds_seconds": [round(x, 2) for x in floors],
            "import_peak_rss_mb": round(peak_mb, 1),
            "psql_copy_seconds": round(copy_seconds, 2),
            "import_to_psql_copy_ratio": round(seconds / copy_seconds, 1),
            "copy_rebuild_seconds": round(rebuild, 2),
            "import_to_copy_rebuild_ratio": round(seconds / rebuild, 2),
            "import_file_mb": round(size_mb, 1),
            "import_nc_seconds": round(nc_seconds, 2),
            "import_nc_peak_rss_mb": round(nc_peak, 1),
            "import_nc_file_mb": round(nc_mb, 1),
            "import_nc_to_plain_ratio": round(nc_seconds / seconds, 2),
            "import_update_100k_seconds": round(update_seconds, 2),
            "search_p95_before_update_ms": percentile(search_before, 0.95),
            "search_p95_during_update_ms": percentile(search_during, 0.95),
            "searches_during_update": len(search_during),
            "import_measured": "flask import-voters as its own process (check and load; the load "
            "beside the check, committed once it passed), RSS of that process sampled every 20 ms; empty "
            "roll, 2,000 precincts; import_seconds and copy_rebuild_seconds are medians of "
            f"{ROUNDS} alternating rounds, each from a checkpoint with no autovacuum running. copy_rebuild: psql "
            "\\copy of the same rows into voter with its secondary indexes and foreign keys dropped and "
            "rebuilt in one transaction. Update: 100,000 NC-layout rows into the 1,000,000-voter roll "
            "the NC import left, half of them new and half changed; searches: the signed-in htmx "
            "fragment GET /voters in the bench's process (bench/voters.py's kinds), one after another, "
            "300 on the settled, warm roll before the update, and the same 300 in turn while it ran.",
        }
        print(json.dumps(figures, indent=2))
    finally:
        migrate.drop_database(url)
        shutil.rmtree(workdir, ignore_errors=True)
    path = write_results("voters", figures, merge=True)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
