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
import os
import re
import sys
import tempfile
import threading
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


def seed_certified_canvass(url: str) -> int:
    """2,000 precincts, 10 contests x 4 candidates, a verified return for each, closed and certified
    through the lifecycle route (as bench/reports.py does, without the roll: the canvass reads no
    voter). Returns the election's id."""
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
    from portal import create_app

    app = create_app({"DATABASE_URL": url, "DATABASE_URL_FROM_ENV": True, "WTF_CSRF_ENABLED": False})
    manager = app.test_client()
    manager.post("/login", data={"username": "chair", "password": "bench password 123"})
    for to in ("closed", "certified"):
        form = manager.get(f"/elections/{election_id}/status", headers={"HX-Request": "true"}).text
        version = re.search(r'name="version" type="hidden" value="(\d+)"', form).group(1)
        response = manager.post(f"/elections/{election_id}/status", data={"to": to, "version": version})
        assert response.status_code in (200, 303), (to, response.status_code)
    print(f"seeded {PRECINCTS} precincts x 40 candidates, certified")
    return election_id


def cheap_page_during_reports(url: str, env: dict | None = None) -> dict:
    election_id = seed_certified_canvass(url)
    canvass = f"/elections/{election_id}/reports/canvass"
    with gunicorn(url, workers=1, threads=8, env=env) as (base, _):
        cookie = sign_in(base, "bench", "bench password 123")
        load(base, ["/elections", canvass], cookie=cookie, total=20, concurrency=2)  # warm-up
        alone = load(base, ["/elections"], cookie=cookie, total=CHEAP_REQUESTS, concurrency=1)
        stop = threading.Event()
        fetched: list[int] = []

        def fetch_reports() -> None:
            request = urllib.request.Request(base + canvass, headers={"Cookie": cookie})
            while not stop.is_set():
                with urllib.request.urlopen(request, timeout=60) as response:
                    fetched.append(len(response.read()))

        readers = [threading.Thread(target=fetch_reports) for _ in range(2)]
        for reader in readers:
            reader.start()
        try:
            during = load(base, ["/elections"], cookie=cookie, total=CHEAP_REQUESTS, concurrency=1)
            fetched_in_time = len(fetched)
        finally:
            stop.set()
            for reader in readers:
                reader.join()
    print(
        f"/elections alone p95 {alone['p95_ms']} ms; during 2 canvass readers p95 {during['p95_ms']} ms "
        f"(p99 {during['p99_ms']} ms; {len(fetched)} canvasses of {max(fetched, default=0) / 1e6:.1f} MB)"
    )
    return {
        "cheap_page_p95_alone_ms": alone["p95_ms"],
        "cheap_page_p95_during_reports_ms": during["p95_ms"],
        "cheap_page_p99_during_reports_ms": during["p99_ms"],
        "cheap_page_during_reports_ratio": round(during["p95_ms"] / alone["p95_ms"], 2),
        "canvasses_per_second_meanwhile": round(fetched_in_time / during["seconds"], 2),
        "canvass_html_mb": round(max(fetched, default=0) / (1 << 20), 2),
        "errors": alone["errors"] + during["errors"],
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
