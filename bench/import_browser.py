"""A 100,000-row voter file imported through the import page in headless Chromium, as a manager does it.

A scratch database gets 5 precincts and the demo's parties (no voters); a CSV in the import's default
columns is written (not timed); the portal runs under gunicorn (one gthread worker, 8 threads, CSRF
on) and Debian's Chromium, driven by Playwright, signs in, uploads the file, checks every row (the
page shows the check's progress bar and polls it) and loads them. Timed from the click to what the
page then says: upload and preview, check, load; then the roll's count on /voters. Any console
error fails the run. This was the suite's largest test; a small file takes the same path in
tests/test_browser_voters.py. Figures merge into bench/results/voters.json.

Settings are environment variables: BENCH_BROWSER_IMPORT_ROWS (default 100,000).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from common import flask_cli, gunicorn, migrate, scratch_database, write_results
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from portal.demo.voterfile import write_voter_csv
from tests.browser import CHROMIUM_FLAGS, PageErrors

ROWS = int(os.environ.get("BENCH_BROWSER_IMPORT_ROWS", 100_000))
PASSWORD = "bench password 123"
WAIT_MS = 300_000  # for each step: the run ends with an error rather than hang


def import_in_chromium(base: str, csv_path: Path) -> dict:
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise SystemExit("Debian's chromium is needed (apt-get install chromium)")
    rows = f"{ROWS:,}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors = PageErrors(page)
            page.goto(f"{base}/login")
            page.fill("#username", "bench")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            page.goto(f"{base}/voters/import")

            started = time.perf_counter()
            page.set_input_files("#file", str(csv_path))
            page.click("text=Upload and preview")
            expect(page.locator("h2", has_text="How the columns map")).to_be_visible(timeout=WAIT_MS)
            upload = time.perf_counter() - started
            expect(page.locator("#map_date_of_birth")).to_have_value("4")

            started = time.perf_counter()
            page.click("text=Check every row")
            progress_seen = True
            try:
                expect(page.locator("progress.import-progress")).to_be_visible(timeout=10_000)
            except AssertionError:
                progress_seen = False  # the check was over before the page could show it
            expect(page.locator("text=Every row passed the checks")).to_be_visible(timeout=WAIT_MS)
            check = time.perf_counter() - started
            expect(page.locator(".import-counts")).to_contain_text(rows)

            started = time.perf_counter()
            page.click(f"text=Load {rows} rows")
            expect(page.locator(f"text=Loaded: {rows} new voters")).to_be_visible(timeout=WAIT_MS)
            load = time.perf_counter() - started

            page.goto(f"{base}/voters")
            # The whole roll is counted exactly (kept by triggers, which the bulk load leaves in place).
            expect(page.locator("#voter-count")).to_have_text(f"{rows} voters")
            if errors.messages:
                raise SystemExit(f"console errors in Chromium: {errors.messages}")
        finally:
            browser.close()
    return {"upload": upload, "check": check, "load": load, "progress_seen": progress_seen}


def precinct_codes(url: str) -> list[str]:
    async def go():
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            codes = list(await conn.scalars(text("SELECT code FROM precinct ORDER BY id")))
        await engine.dispose()
        return codes

    return asyncio.run(go())


def main() -> None:
    url = scratch_database("tally_bench_import_browser")
    workdir = Path(tempfile.mkdtemp())
    try:
        flask_cli(
            url,
            "seed-demo",
            "--no-election-night",
            "--voters",
            "0",
            "--precincts",
            "5",
            "--logins-file",
            str(workdir / "logins.txt"),
        )
        flask_cli(url, "create-user", "bench", "--role", "manager", "--password", PASSWORD)
        csv_path = write_voter_csv(
            workdir / "county.csv", ROWS, precinct_codes=precinct_codes(url), party_abbreviations=["DEM"]
        )
        size_mb = csv_path.stat().st_size / (1 << 20)
        print(f"wrote {ROWS:,} rows ({size_mb:.1f} MB)")
        with gunicorn(url, env={"PORTAL_ACCESS_LOG": "/dev/null"}) as (base, _):
            took = import_in_chromium(base, csv_path)
        total = took["upload"] + took["check"] + took["load"]
        print(
            f"in Chromium: upload and preview {took['upload']:.2f} s, check {took['check']:.2f} s "
            f"(progress bar {'seen' if took['progress_seen'] else 'not seen'}), load {took['load']:.2f} s; "
            f"{total:.2f} s in all, {ROWS / total:,.0f} rows/s"
        )
        figures = {
            "browser_import_rows": ROWS,
            "browser_import_file_mb": round(size_mb, 1),
            "browser_import_upload_seconds": round(took["upload"], 2),
            "browser_import_check_seconds": round(took["check"], 2),
            "browser_import_load_seconds": round(took["load"], 2),
            "browser_import_total_seconds": round(total, 2),
            "browser_import_progress_seen": took["progress_seen"],
            "browser_import_measured": "bench/import_browser.py: the import page in headless Chromium "
            "(Playwright) against gunicorn (1 gthread worker, 8 threads, CSRF on), each step timed from "
            "its click to the page's answer (the status polled by htmx every second); empty roll, "
            "5 precincts.",
        }
        print(json.dumps(figures, indent=2))
    finally:
        migrate.drop_database(url)
        shutil.rmtree(workdir, ignore_errors=True)
    path = write_results("voters", figures, merge=True)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
