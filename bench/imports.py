"""Importing a 1,000,000-row voter CSV, checked and loaded, against `psql \\copy` of the same file.

A scratch database gets 2,000 precincts and the parties (no voters); a realistic CSV is written
(not timed); then `flask --app wsgi import-voters FILE` runs as its own process: its wall time and
peak RSS (sampled every 20 ms) are the import figures. `psql \\copy` of the same file into a bare
table with the same columns (no keys, no indexes) is the floor. Figures merge into
bench/results/voters.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from common import RESULTS, ROOT, flask_cli, migrate, scratch_database
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", 1_000_000))


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


def psql_copy_seconds(url: str, csv_path: Path) -> float:
    """`psql \\copy` of the file into a bare table (same columns, no keys or indexes)."""
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
        env = {**os.environ, "PORTAL_DATABASE_URL": url}
        seconds, peak_mb, result = run_measured(
            [sys.executable, "-m", "flask", "--app", "wsgi", "import-voters", str(csv_path)], env
        )
        print(result.stdout.strip(), result.stderr.strip()[-2000:], sep="\n")
        if result.returncode != 0:
            raise SystemExit(f"import failed with exit code {result.returncode}")
        figures = {
            "import_rows": ROWS,
            "import_seconds": round(seconds, 2),
            "import_peak_rss_mb": round(peak_mb, 1),
            "psql_copy_seconds": round(copy_seconds, 2),
            "import_to_psql_copy_ratio": round(seconds / copy_seconds, 1),
            "import_file_mb": round(size_mb, 1),
            "import_measured": "flask import-voters as its own process (check + load, one transaction), "
            "RSS of that process sampled every 20 ms; empty roll, 2,000 precincts",
        }
        print(json.dumps(figures, indent=2))
    finally:
        migrate.drop_database(url)
        shutil.rmtree(workdir, ignore_errors=True)
    path = RESULTS / "voters.json"
    existing = json.loads(path.read_text()) if path.exists() else {}
    existing.update(figures)
    path.write_text(json.dumps(existing, indent=2) + "\n")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
