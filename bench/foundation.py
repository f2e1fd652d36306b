"""Persistent event loop + pooled engine versus stock Flask (a loop per request) + NullPool.

Both serve the same DB-backed page (/precincts: a count, a page of 50 precincts, and their
registered-voter counts) from one gunicorn gthread worker with 8 threads, signed in, over 16
keep-alive client connections on 127.0.0.1. Figures go to bench/results/foundation.json.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from common import flask_cli, gunicorn, load, migrate, scratch_database, sign_in, write_results

REQUESTS = int(os.environ.get("BENCH_REQUESTS", 3000))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", 16))
PATHS = ["/precincts", "/precincts?q=1", "/precincts?sort=-name&page=2", "/precincts?q=Main"]

MODES = {
    "persistent_loop": {"PORTAL_ASYNC_LOOP": "persistent", "PORTAL_DATABASE_POOL": "queue"},
    "nullpool": {"PORTAL_ASYNC_LOOP": "per-request", "PORTAL_DATABASE_POOL": "null"},
}


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
        path = write_results("foundation", figures)
        print(f"written to {path}")
        if any(figures[m]["errors"] for m in MODES):
            print(json.dumps({m: figures[m]["sample_errors"] for m in MODES}), file=sys.stderr)
            sys.exit(1)
    finally:
        migrate.drop_database(url)


if __name__ == "__main__":
    main()
