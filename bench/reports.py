"""Reports at 2,000 precincts x 40 candidates across 10 contests: the canvass page and the NIST export.

A scratch database gets 2,000 precincts, one certified election with 10 contests of 4 candidates on
every precinct's ballot, and a verified return for every precinct and contest (20,000 returns,
80,000 vote counts), generated in SQL. The canvass page and the NIST JSON are then fetched through
the Flask app in-process (signed in as an observer), 5 times each; the figures are the medians and
maxima. Figures go to bench/results/reports.json.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from common import flask_cli, migrate, scratch_database, write_results
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

PRECINCTS, CONTESTS, CANDIDATES = 2000, 10, 4
SETUP = [
    f"INSERT INTO precinct (code, name) SELECT 'P' || lpad(g::text, 5, '0'), 'Precinct ' || g FROM generate_series(1, {PRECINCTS}) g",
    "INSERT INTO election (name, election_date, kind, status) VALUES ('County General 2026', '2026-11-03', 'general', 'closed')",
    "INSERT INTO election_precinct SELECT (SELECT id FROM election), id FROM precinct",
    f"INSERT INTO contest (election_id, office_title, vote_for, ballot_order) SELECT (SELECT id FROM election), 'Contest ' || g, 1, g FROM generate_series(1, {CONTESTS}) g",
    "INSERT INTO contest_precinct SELECT c.id, p.id FROM contest c, precinct p",
    f"INSERT INTO candidate (contest_id, election_id, code, ballot_name, ballot_order) SELECT c.id, c.election_id, 'C' || c.id || '-' || g, 'Candidate ' || c.id || '.' || g, g FROM contest c, generate_series(1, {CANDIDATES}) g",
    "INSERT INTO precinct_return (election_id, precinct_id, contest_id, revision, ballots_cast, overvotes, undervotes, status, entered_by_id, verified_by_id, verified_at) "
    "SELECT c.election_id, p.id, c.id, 1, 400, 0, 0, 'verified', (SELECT min(id) FROM user_account), (SELECT max(id) FROM user_account), now() FROM precinct p, contest c",
    "INSERT INTO return_vote SELECT r.id, k.id, 100 FROM precinct_return r JOIN candidate k ON k.contest_id = r.contest_id",
    "UPDATE election SET status = 'certified'",
    "ANALYZE",
]


async def setup(url: str) -> int:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        for statement in SETUP:
            await conn.execute(text(statement))
        election_id = await conn.scalar(text("SELECT id FROM election"))
    await engine.dispose()
    return election_id


def main() -> None:
    url = scratch_database("tally_bench_reports")
    try:
        for name in ("clerk", "checker", "reader"):
            flask_cli(url, "create-user", name, "--role", "observer", "--password", "bench password 123")
        election_id = asyncio.run(setup(url))
        from portal import create_app

        app = create_app(
            {
                "DATABASE_URL": url,
                "DATABASE_URL_FROM_ENV": True,
                "SESSION_COOKIE_SECURE": False,
                "WTF_CSRF_ENABLED": False,
            }
        )
        client = app.test_client()
        client.post("/login", data={"username": "reader", "password": "bench password 123"})

        def timed(path: str) -> tuple[list[float], int]:
            client.get(path)  # warm-up
            times, size = [], 0
            for _ in range(5):
                started = time.perf_counter()
                response = client.get(path)
                times.append(time.perf_counter() - started)
                assert response.status_code == 200, response.status_code
                size = len(response.data)
            return times, size

        canvass, canvass_bytes = timed(f"/elections/{election_id}/reports/canvass")
        nist, nist_bytes = timed(f"/elections/{election_id}/reports/results.json")
        figures = {
            "canvass_seconds": round(statistics.median(canvass), 3),
            "canvass_max_seconds": round(max(canvass), 3),
            "canvass_html_mb": round(canvass_bytes / (1 << 20), 1),
            "nist_export_seconds": round(statistics.median(nist), 3),
            "nist_export_max_seconds": round(max(nist), 3),
            "nist_json_mb": round(nist_bytes / (1 << 20), 1),
            "setup": f"{PRECINCTS} precincts, {CONTESTS} contests x {CANDIDATES} candidates, every return verified, "
            "certified; in-process through the Flask app, median of 5 after a warm-up",
        }
        print(figures)
        print(f"written to {write_results('reports', figures)}")
    finally:
        migrate.drop_database(url)


if __name__ == "__main__":
    main()
