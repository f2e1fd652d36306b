"""Reports at 2,000 precincts x 40 candidates across 10 contests: the canvass page and the NIST export,
for an election counting one voting method and for one counting four (4x the returns).

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
import re
import statistics
import time

from common import bench_app, flask_cli, migrate, scratch_database, signed_in, write_results
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

PRECINCTS, CONTESTS, CANDIDATES, VOTERS_PER_PRECINCT = 2000, 10, 4, 500
METHODS = ["election_day", "early", "absentee", "provisional"]
ROLL = [
    f"INSERT INTO precinct (code, name) SELECT 'P' || lpad(g::text, 5, '0'), 'Precinct ' || g FROM generate_series(1, {PRECINCTS}) g",
    "INSERT INTO voter (state_voter_id, first_name, last_name, date_of_birth, birth_year, address, precinct_id, registration_date) "
    f"SELECT 'V' || lpad(g::text, 8, '0'), 'First' || g, 'Last' || (g % 5000), date '1950-01-01' + (g % 20000), extract(year FROM date '1950-01-01' + (g % 20000)), g || ' Main St', "
    f"(SELECT min(id) FROM precinct) + (g - 1) % {PRECINCTS}, date '2010-01-01' FROM generate_series(1, {PRECINCTS * VOTERS_PER_PRECINCT}) g",
]


def election(name: str, methods: list[str]) -> list[str]:
    """One open election on every precinct: 10 contests x 4 candidates, a verified return for every
    precinct, contest and method counted, 800,000 check-ins."""
    e = f"(SELECT id FROM election WHERE name = '{name}')"
    ballots = 400 // len(methods)
    return [
        f"INSERT INTO election (name, election_date, kind, status) VALUES ('{name}', '2026-11-03', 'general', 'open')",
        f"INSERT INTO counting_group SELECT {e}, m FROM unnest(ARRAY{methods!r}) m",
        f"INSERT INTO election_precinct SELECT {e}, id FROM precinct",
        f"INSERT INTO contest (election_id, office_title, vote_for, ballot_order) SELECT {e}, 'Contest ' || g, 1, g FROM generate_series(1, {CONTESTS}) g",
        f"INSERT INTO contest_precinct SELECT c.id, p.id FROM contest c, precinct p WHERE c.election_id = {e}",
        f"INSERT INTO candidate (contest_id, election_id, code, ballot_name, ballot_order) SELECT c.id, c.election_id, 'C' || c.id || '-' || g, 'Candidate ' || c.id || '.' || g, g FROM contest c, generate_series(1, {CANDIDATES}) g WHERE c.election_id = {e}",
        "INSERT INTO precinct_return (election_id, precinct_id, contest_id, method, revision, ballots_cast, overvotes, undervotes, status, entered_by_id, verified_by_id, verified_at) "
        f"SELECT c.election_id, p.id, c.id, m.method, 1, {ballots}, 0, 0, 'verified', (SELECT min(id) FROM user_account), (SELECT max(id) FROM user_account), now() "
        f"FROM precinct p, contest c, counting_group m WHERE c.election_id = {e} AND m.election_id = {e}",
        f"INSERT INTO return_vote SELECT r.id, k.id, {ballots // CANDIDATES} FROM precinct_return r JOIN candidate k ON k.contest_id = r.contest_id WHERE r.election_id = {e}",
        "INSERT INTO check_in (voter_id, election_id, precinct_id, method, user_id) "
        f"SELECT v.id, {e}, v.precinct_id, (ARRAY['in_person','early','mail','in_person','early'])[1 + v.id % 5], "
        "(SELECT min(id) FROM user_account) FROM voter v WHERE v.id % 5 < 4",
    ]


SCENARIOS = {"": ["election_day"], "_methods": METHODS}  # key suffix -> methods counted


async def setup(url: str) -> dict[str, int]:
    """The roll, then one election per scenario: suffix -> election id."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")  # VACUUM runs outside a transaction
    found = {}
    async with engine.connect() as conn:
        for statement in ROLL:
            await conn.execute(text(statement))
        for suffix, methods in SCENARIOS.items():
            name = f"County General 2026{suffix}"
            for statement in election(name, methods):
                await conn.execute(text(statement))
            found[suffix] = await conn.scalar(text("SELECT id FROM election WHERE name = :n"), {"n": name})
        await conn.execute(text("VACUUM ANALYZE"))
    await engine.dispose()
    return found


def main() -> None:
    url = scratch_database("tally_bench_reports")
    try:
        for name in ("clerk", "checker", "reader"):
            flask_cli(url, "create-user", name, "--role", "observer", "--password", "bench password 123")
        flask_cli(url, "create-user", "chair", "--role", "manager", "--password", "bench password 123")
        elections = asyncio.run(setup(url))
        app = bench_app(url)
        client = signed_in(app, "reader")
        manager = signed_in(app, "chair")

        def timed(path: str) -> tuple[list[float], int, float]:
            started = time.perf_counter()
            client.get(path)  # warm-up (for a certified election: the first read of its record)
            first = time.perf_counter() - started
            times, size = [], 0
            for _ in range(5):
                started = time.perf_counter()
                response = client.get(path)
                times.append(time.perf_counter() - started)
                assert response.status_code == 200, response.status_code
                size = len(response.data)
            return times, size, first

        def move(election_id: int, to: str) -> float:
            form = manager.get(f"/elections/{election_id}/status", headers={"HX-Request": "true"}).text
            version = re.search(r'name="version" type="hidden" value="(\d+)"', form).group(1)
            started = time.perf_counter()
            response = manager.post(f"/elections/{election_id}/status", data={"to": to, "version": version})
            elapsed = time.perf_counter() - started
            assert response.status_code in (200, 303), (to, response.status_code, response.text[:300])
            return elapsed

        figures = {}
        for suffix, election_id in elections.items():
            canvass_url = f"/elections/{election_id}/reports/canvass"
            nist_url = f"/elections/{election_id}/reports/results.json"
            open_canvass, _, _ = timed(canvass_url)
            open_nist, _, _ = timed(nist_url)
            close_seconds = move(election_id, "closed")
            certify_seconds = move(election_id, "certified")
            canvass, canvass_bytes, canvass_first = timed(canvass_url)
            nist, nist_bytes, nist_first = timed(nist_url)
            export = "nist" if suffix else "nist_export"  # (the single-method keys predate this)
            figures |= {
                f"canvass{suffix}_seconds": round(statistics.median(canvass), 3),
                f"canvass{suffix}_max_seconds": round(max(canvass), 3),
                f"canvass{suffix}_html_mb": round(canvass_bytes / (1 << 20), 1),
                f"canvass{suffix}_first_seconds": round(canvass_first, 3),
                f"{export}{suffix}_first_seconds": round(nist_first, 3),
                f"{export}{suffix}_seconds": round(statistics.median(nist), 3),
                f"{export}{suffix}_max_seconds": round(max(nist), 3),
                f"nist{suffix}_json_mb": round(nist_bytes / (1 << 20), 1),
                f"canvass{suffix}_open_seconds": round(statistics.median(open_canvass), 3),
                f"{export}{suffix}_open_seconds": round(statistics.median(open_nist), 3),
                f"close{suffix}_seconds": round(close_seconds, 3),
                f"certify{suffix}_seconds": round(certify_seconds, 3),
            }
        figures["setup"] = (
            f"{PRECINCTS} precincts, {CONTESTS} contests x {CANDIDATES} candidates, every return verified, "
            f"{PRECINCTS * VOTERS_PER_PRECINCT:,} voters, 800,000 check-ins per election; keys without a "
            "suffix: an election counting election day only (20,000 returns); *_methods_*: one counting "
            f"{len(METHODS)} methods (80,000 returns, 320,000 vote counts); in-process through the Flask app, "
            "median of 5 after a warm-up; *_open_* while open (from the tables), the others once certified "
            "(from the frozen record, which each worker reads and parses once: *_first_* is that first "
            "request); close and certify through the lifecycle route"
        )
        print(figures)
        print(f"written to {write_results('reports', figures)}")
    finally:
        migrate.drop_database(url)


if __name__ == "__main__":
    main()
