"""Reports at 2,000 precincts x 40 candidates across 10 contests: the canvass page and the NIST export.

A scratch database gets 2,000 precincts with 500 active voters each (1,000,000), one open election
with 10 contests of 4 candidates on every precinct's ballot, 800,000 check-ins, and a verified
return for every precinct and contest (20,000 returns, 80,000 vote counts), generated in SQL. Through
the Flask app in-process: the canvass page and the NIST JSON while the election is open (built from
the tables), then the election is closed (registration frozen) and certified (the canvass frozen)
by a manager through the lifecycle route, both timed, and the two reports fetched again (built from
the frozen record). Each report: 5 requests after a warm-up; median and maximum.
Figures go to bench/results/reports.json.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from common import flask_cli, migrate, scratch_database, write_results
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

PRECINCTS, CONTESTS, CANDIDATES, VOTERS_PER_PRECINCT = 2000, 10, 4, 500
SETUP = [
    f"INSERT INTO precinct (code, name) SELECT 'P' || lpad(g::text, 5, '0'), 'Precinct ' || g FROM generate_series(1, {PRECINCTS}) g",
    "INSERT INTO voter (state_voter_id, first_name, last_name, date_of_birth, birth_year, address, precinct_id, registration_date) "
    f"SELECT 'V' || lpad(g::text, 8, '0'), 'First' || g, 'Last' || (g % 5000), date '1950-01-01' + (g % 20000), extract(year FROM date '1950-01-01' + (g % 20000)), g || ' Main St', "
    f"(SELECT min(id) FROM precinct) + (g - 1) % {PRECINCTS}, date '2010-01-01' FROM generate_series(1, {PRECINCTS * VOTERS_PER_PRECINCT}) g",
    "INSERT INTO election (name, election_date, kind, status) VALUES ('County General 2026', '2026-11-03', 'general', 'open')",
    "INSERT INTO election_precinct SELECT (SELECT id FROM election), id FROM precinct",
    f"INSERT INTO contest (election_id, office_title, vote_for, ballot_order) SELECT (SELECT id FROM election), 'Contest ' || g, 1, g FROM generate_series(1, {CONTESTS}) g",
    "INSERT INTO contest_precinct SELECT c.id, p.id FROM contest c, precinct p",
    f"INSERT INTO candidate (contest_id, election_id, code, ballot_name, ballot_order) SELECT c.id, c.election_id, 'C' || c.id || '-' || g, 'Candidate ' || c.id || '.' || g, g FROM contest c, generate_series(1, {CANDIDATES}) g",
    "INSERT INTO precinct_return (election_id, precinct_id, contest_id, revision, ballots_cast, overvotes, undervotes, status, entered_by_id, verified_by_id, verified_at) "
    "SELECT c.election_id, p.id, c.id, 1, 400, 0, 0, 'verified', (SELECT min(id) FROM user_account), (SELECT max(id) FROM user_account), now() FROM precinct p, contest c",
    "INSERT INTO return_vote SELECT r.id, k.id, 100 FROM precinct_return r JOIN candidate k ON k.contest_id = r.contest_id",
    "INSERT INTO check_in (voter_id, election_id, precinct_id, method, user_id) "
    "SELECT v.id, (SELECT id FROM election), v.precinct_id, (ARRAY['in_person','early','mail','in_person','early'])[1 + v.id % 5], "
    "(SELECT min(id) FROM user_account) FROM voter v WHERE v.id % 5 < 4",
    "VACUUM ANALYZE",
]


async def setup(url: str) -> int:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")  # VACUUM runs outside a transaction
    async with engine.connect() as conn:
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
        flask_cli(url, "create-user", "chair", "--role", "manager", "--password", "bench password 123")
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
        manager = app.test_client()
        manager.post("/login", data={"username": "chair", "password": "bench password 123"})

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

        def move(to: str) -> float:
            started = time.perf_counter()
            response = manager.post(f"/elections/{election_id}/status", data={"to": to})
            elapsed = time.perf_counter() - started
            assert response.status_code in (200, 303), (to, response.status_code, response.text[:300])
            return elapsed

        canvass_url = f"/elections/{election_id}/reports/canvass"
        nist_url = f"/elections/{election_id}/reports/results.json"
        open_canvass, _ = timed(canvass_url)
        open_nist, _ = timed(nist_url)
        close_seconds = move("closed")
        certify_seconds = move("certified")
        canvass, canvass_bytes = timed(canvass_url)
        nist, nist_bytes = timed(nist_url)
        figures = {
            "canvass_seconds": round(statistics.median(canvass), 3),
            "canvass_max_seconds": round(max(canvass), 3),
            "canvass_html_mb": round(canvass_bytes / (1 << 20), 1),
            "nist_export_seconds": round(statistics.median(nist), 3),
            "nist_export_max_seconds": round(max(nist), 3),
            "nist_json_mb": round(nist_bytes / (1 << 20), 1),
            "canvass_open_seconds": round(statistics.median(open_canvass), 3),
            "nist_export_open_seconds": round(statistics.median(open_nist), 3),
            "close_seconds": round(close_seconds, 3),
            "certify_seconds": round(certify_seconds, 3),
            "setup": f"{PRECINCTS} precincts, {CONTESTS} contests x {CANDIDATES} candidates, every return verified, "
            f"{PRECINCTS * VOTERS_PER_PRECINCT:,} voters, 800,000 check-ins; in-process through the Flask app, "
            "median of 5 after a warm-up; *_open_* while open (from the tables), the others once certified "
            "(from the frozen record); close and certify through the lifecycle route",
        }
        print(figures)
        print(f"written to {write_results('reports', figures)}")
    finally:
        migrate.drop_database(url)


if __name__ == "__main__":
    main()
