"""The voter roll at a million rows: search fragments and deep pages through the real app.

Seeds N voters (default 1,000,000 over 2,000 precincts) into a scratch database, then times the
signed-in htmx fragment GET /voters through the whole Flask stack (routing, session, user load,
queries, template) in-process, so the figures are server-side: 600 varied searches (name prefixes,
"last first" pairs, voter-ID prefixes, address prefixes, precinct/status/party filters, every sort)
and 500 pages around row 900,000 (keyset cursors), then the roll's size both ways (an exact
count(*) against the trigger-kept voter_count). Figures merge into bench/results/voters.json.

Settings are environment variables, not options: BENCH_VOTERS, BENCH_PRECINCTS, BENCH_SHOW_SLOW, and
BENCH_DATABASE (the scratch database's name, dropped and made again; default tally_bench_voters).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import (
    bench_app,
    flask_cli,
    migrate,
    scratch_database,
    search_params,
    search_samples,
    signed_in,
    write_results,
)

VOTERS = int(os.environ.get("BENCH_VOTERS", 1_000_000))
PRECINCTS = int(os.environ.get("BENCH_PRECINCTS", 2_000))
SEARCHES = 600
DEEP_PAGES = 500


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[max(0, int(len(ordered) * p) - 1)], 2)


def main() -> None:
    url = scratch_database(os.environ.get("BENCH_DATABASE", "tally_bench_voters"))
    try:
        started = time.perf_counter()
        logins = str(Path(tempfile.mkdtemp()) / "logins.txt")
        flask_cli(
            url,
            "seed-demo",
            "--no-election-night",
            "--voters",
            str(VOTERS),
            "--precincts",
            str(PRECINCTS),
            "--logins-file",
            logins,
        )
        flask_cli(url, "create-user", "bench", "--role", "clerk", "--password", "bench password 123")
        settle(url)
        print(f"seeded {VOTERS:,} voters in {time.perf_counter() - started:.1f} s")
        figures = measure(url)
    finally:
        migrate.drop_database(url)
    print(f"written to {write_results('voters', figures, merge=True)}")


def settle(url: str) -> None:
    """Measure the steady state, not the aftermath of the bulk load: statistics, visibility map
    and a checkpoint done before timing starts."""
    import asyncio

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def go():
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text("VACUUM ANALYZE voter"))
            await conn.execute(text("CHECKPOINT"))
        await engine.dispose()

    asyncio.run(go())


def measure(url: str) -> dict:
    from sqlalchemy import text

    from portal import aio
    from portal.db import reading
    from portal.voters.search import encode_cursor

    app = bench_app(url)
    client = signed_in(app, "bench")
    rng = random.Random(7)

    async def sample():
        async with reading() as db:
            names, precincts = await search_samples(db)
            deep = {}
            for sort, key in (
                ("name", "last_key, first_key, id"),
                ("voter_id", "state_voter_id"),
                ("-registered", "registration_date DESC, id DESC"),
            ):
                order = key
                rows = (
                    await db.execute(
                        text(
                            f"SELECT {key.replace(' DESC', '')} FROM voter"
                            f" ORDER BY {order} OFFSET 899000 LIMIT 2000"
                        )
                    )
                ).all()
                deep[sort] = [encode_cursor(list(r)) for r in rows[::4]]
            return names, precincts, deep

    with app.app_context():
        names, precincts, deep = aio.run(sample())

    searches = search_params(rng, names, precincts, SEARCHES)

    def timed(params_list):
        latencies = []
        for params in params_list:
            started = time.perf_counter()
            response = client.get("/voters", query_string=params, headers={"HX-Request": "true"})
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{params}: {response.status_code}")
        return latencies

    timed(searches[:50])  # warm-up: pool, caches, compiled statements
    search_ms = timed(searches)
    if os.environ.get("BENCH_SHOW_SLOW"):
        for ms, params in sorted(zip(search_ms, searches, strict=True), key=lambda t: -t[0])[:25]:
            print(f"{ms:8.1f} ms  {params}")
    deep_params = []
    for n in range(DEEP_PAGES):
        sort = ["name", "voter_id", "-registered"][n % 3]
        deep_params.append({"sort": sort, "after": rng.choice(deep[sort])})
    deep_ms = timed(deep_params)
    count_ms = aio_timed(app, "SELECT count(*) FROM voter")
    kept_ms = aio_timed(app, "SELECT coalesce(sum(delta), 0) FROM voter_count")
    figures = {
        "voters": VOTERS,
        "roll_count_star_p50_ms": round(statistics.median(count_ms), 2),
        "roll_count_kept_p50_ms": round(statistics.median(kept_ms), 3),
        "search_p95_ms": percentile(search_ms, 0.95),
        "search_p50_ms": round(statistics.median(search_ms), 2),
        "search_requests": len(search_ms),
        "deep_page_p95_ms": percentile(deep_ms, 0.95),
        "deep_page_p50_ms": round(statistics.median(deep_ms), 2),
        "deep_page_requests": len(deep_ms),
        "search_measured": "in-process through the Flask app (htmx fragment), signed in, after 50 warm-up",
    }
    print(json.dumps(figures, indent=2))
    return figures


def aio_timed(app, sql: str, repeat: int = 21) -> list[float]:
    """Milliseconds per run of `sql` on the portal's pool (a warm-up run first)."""
    from sqlalchemy import text

    from portal import aio
    from portal.db import reading

    async def go():
        times = []
        async with reading() as db:
            await db.execute(text(sql))
            for _ in range(repeat):
                started = time.perf_counter()
                await db.execute(text(sql))
                times.append((time.perf_counter() - started) * 1000)
        return times

    with app.app_context():
        return aio.run(go())


if __name__ == "__main__":
    sys.exit(main())
