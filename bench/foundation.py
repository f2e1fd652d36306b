"""Persistent event loop + pooled engine versus stock Flask (a loop per request) + NullPool.

Both serve the same DB-backed page (/precincts: a count, a page of 50 precincts, and their
registered-voter counts) from one gunicorn gthread worker with 8 threads, signed in, over 16
keep-alive client connections on 127.0.0.1.

Then: does a cheap page wait behind a report? One gunicorn worker (gthread, 8 threads) serves
/elections to one client, alone and while 2 other clients fetch, back to back, the canvass of a
certified election of 2,000 precincts x 10 contests x 4 candidates (1.1 MB of HTML, rendered from
the frozen record). Figures go to bench/results/foundation.json: cheap_page_p95_alone_ms and
cheap_page_p95_during_reports_ms (target: at most 3x alone).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import re
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import flask_cli, gunicorn, load, migrate, scratch_database, sign_in, write_results

REQUESTS = int(os.environ.get("BENCH_REQUESTS", 3000))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", 16))
PATHS = ["/precincts", "/precincts?q=1", "/precincts?sort=-name&page=2", "/precincts?q=Main"]

MODES = {
    "persistent_loop": {"PORTAL_ASYNC_LOOP": "persistent", "PORTAL_DATABASE_POOL": "queue"},
    "nullpool": {"PORTAL_ASYNC_LOOP": "per-request", "PORTAL_DATABASE_POOL": "null"},
}


CHEAP_REQUESTS = int(os.environ.get("BENCH_CHEAP_REQUESTS", 300))


def seed_canvass(url: str) -> int:
    """2,000 precincts, 10 contests x 4 candidates, a verified return for each (as bench/reports.py
    does, without the roll: the canvass reads no voter), the election still open. Returns its id."""
    from reports import PRECINCTS, ROLL, election  # (bench/reports.py)
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def seed() -> int:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(ROLL[0]))
            for statement in election("County General 2026", ["election_day"])[:-1]:  # (no check-ins)
                await conn.execute(text(statement))
            await conn.execute(text("VACUUM ANALYZE"))
            found = await conn.scalar(text("SELECT id FROM election WHERE name = 'County General 2026'"))
        await engine.dispose()
        return found

    flask_cli(url, "create-user", "chair", "--role", "manager", "--password", "bench password 123")
    election_id = asyncio.run(seed())
    print(f"seeded {PRECINCTS} precincts x 40 candidates")
    return election_id


def certify(url: str, election_id: int) -> None:
    """Closed and certified through the lifecycle route."""
    from portal import create_app

    app = create_app({"DATABASE_URL": url, "DATABASE_URL_FROM_ENV": True, "WTF_CSRF_ENABLED": False})
    manager = app.test_client()
    manager.post("/login", data={"username": "chair", "password": "bench password 123"})
    for to in ("closed", "certified"):
        form = manager.get(f"/elections/{election_id}/status", headers={"HX-Request": "true"}).text
        version = re.search(r'name="version" type="hidden" value="(\d+)"', form).group(1)
        response = manager.post(f"/elections/{election_id}/status", data={"to": to, "version": version})
        assert response.status_code in (200, 303), (to, response.status_code)


def fetch_reports(url: str, cookie: str, stop, fetched, largest) -> None:
    """One report reader (a process of its own): fetches `url` back to back until `stop`."""
    request = urllib.request.Request(url, headers={"Cookie": cookie})
    while not stop.is_set():
        with urllib.request.urlopen(request, timeout=60) as response:
            size = len(response.read())
        with fetched.get_lock():
            fetched.value += 1
        largest.value = max(largest.value, size)


def during_readers(base: str, cookie: str, report: str) -> dict:
    """/elections by one client while 2 others fetch `report` back to back."""
    load(base, [report], cookie=cookie, total=4, concurrency=2)  # warm-up (the report process starts)
    time.sleep(3)
    load(base, [report], cookie=cookie, total=4, concurrency=2)
    # The readers are processes of their own: threads of this process would hold its interpreter
    # lock while they copy 3 MB answers, and the cheap page's client would time that wait too.
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    fetched = context.Value("i", 0)
    largest = context.Value("i", 0)
    readers = [
        context.Process(target=fetch_reports, args=(base + report, cookie, stop, fetched, largest))
        for _ in range(2)
    ]
    for reader in readers:
        reader.start()
    try:
        while fetched.value < 2:  # both readers under way
            time.sleep(0.01)
        counted = fetched.value
        during = load(base, ["/elections"], cookie=cookie, total=CHEAP_REQUESTS, concurrency=1)
        during["reports_per_second"] = round((fetched.value - counted) / during["seconds"], 2)
        during["report_mb"] = round(largest.value / (1 << 20), 2)
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    return during


def cheap_page_during_reports(url: str) -> dict:
    """One gunicorn worker (8 threads); the open canvass, then the certified one, with reports in the
    worker's report process (as configured) and, for comparison, in the worker itself."""
    election_id = seed_canvass(url)
    canvass = f"/elections/{election_id}/reports/canvass"
    figures: dict = {}
    for state in ("open", "certified"):
        if state == "certified":
            certify(url, election_id)
        for where, env in (("report_process", {}), ("in_worker", {"PORTAL_REPORT_PROCESS": "false"})):
            with gunicorn(url, workers=1, threads=8, env={"PORTAL_ACCESS_LOG": "/dev/null", **env}) as (
                base,
                _,
            ):
                cookie = sign_in(base, "bench", "bench password 123")
                load(base, ["/elections"], cookie=cookie, total=20, concurrency=1)  # warm-up
                alone = load(base, ["/elections"], cookie=cookie, total=CHEAP_REQUESTS, concurrency=1)
                during = during_readers(base, cookie, canvass)
            ratio = round(during["p95_ms"] / alone["p95_ms"], 2)
            print(
                f"{state} canvass, reports {where}: /elections alone p95 {alone['p95_ms']} ms; beside 2 "
                f"readers p95 {during['p95_ms']} ms (p99 {during['p99_ms']} ms, {ratio}x); "
                f"{during['reports_per_second']} canvasses/s of {during['report_mb']} MB"
            )
            figures[f"{state}_{where}"] = {
                "alone_p95_ms": alone["p95_ms"],
                "during_p95_ms": during["p95_ms"],
                "during_p99_ms": during["p99_ms"],
                "ratio": ratio,
                "canvasses_per_second": during["reports_per_second"],
                "canvass_mb": during["report_mb"],
                "errors": alone["errors"] + during["errors"],
            }
    shown = figures["certified_report_process"]
    return {
        "cheap_page_p95_alone_ms": shown["alone_p95_ms"],
        "cheap_page_p95_during_reports_ms": shown["during_p95_ms"],
        "cheap_page_p99_during_reports_ms": shown["during_p99_ms"],
        "cheap_page_during_reports_ratio": shown["ratio"],
        "canvasses_per_second_meanwhile": shown["canvasses_per_second"],
        "canvass_html_mb": shown["canvass_mb"],
        "cheap_page_contention": figures,
        "cheap_page_measured": (
            "bench/foundation.py contention: /elections fetched by 1 client, 300 requests, alone and "
            "while 2 client processes fetch the canvass of 2,000 precincts x 40 candidates back to back; "
            "one gunicorn worker, 8 threads; the headline figures are the certified canvass with reports "
            "in the worker's report process; cheap_page_contention has the open canvass and reports "
            "served in the worker itself"
        ),
        "errors": sum(f["errors"] for f in figures.values()),
    }


def contention() -> dict:
    url = scratch_database("tally_bench_contention")
    try:
        flask_cli(url, "create-user", "bench", "--role", "observer", "--password", "bench password 123")
        return cheap_page_during_reports(url)
    finally:
        migrate.drop_database(url)


def main() -> None:
    url = scratch_database("tally_bench_foundation")
    try:
        logins = str(Path(tempfile.mkdtemp()) / "logins.txt")
        flask_cli(
            url,
            "seed-demo",
            "--no-election-night",
            "--voters",
            "50000",
            "--precincts",
            "200",
            "--logins-file",
            logins,
        )
        flask_cli(url, "create-user", "bench", "--role", "observer", "--password", "bench password 123")
        figures = {}
        for mode, env in MODES.items():
            with gunicorn(url, workers=1, threads=8, env=env) as (base, _):
                cookie = sign_in(base, "bench", "bench password 123")
                load(base, PATHS, cookie=cookie, total=200, concurrency=CONCURRENCY)  # warm-up
                result = load(base, PATHS, cookie=cookie, total=REQUESTS, concurrency=CONCURRENCY)
            figures[mode] = result
            print(
                f"{mode:16} {result['rps']:8.1f} req/s  p50 {result['p50_ms']:6.2f} ms  "
                f"p95 {result['p95_ms']:6.2f} ms  errors {result['errors']}/{result['requests']}"
            )
        figures["setup"] = {
            "page": "/precincts (HTML, 50 rows, 3 queries)",
            "precincts": 200,
            "voters": 50000,
            "requests": REQUESTS,
            "client_connections": CONCURRENCY,
            "server": "gunicorn 1 worker, gthread, 8 threads",
            "machine": f"{os.cpu_count()} cores",
        }
        figures |= contention()
        path = write_results("foundation", figures)
        print(f"written to {path}")
        if any(figures[m]["errors"] for m in MODES):
            print(json.dumps({m: figures[m]["sample_errors"] for m in MODES}), file=sys.stderr)
            sys.exit(1)
    finally:
        migrate.drop_database(url)


if __name__ == "__main__":
    if sys.argv[1:] == ["contention"]:  # this part alone, printed (the results file is left as it is)
        print(json.dumps(contention(), indent=2))
    else:
        main()
