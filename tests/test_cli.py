"""`flask --app wsgi ...` commands."""

from __future__ import annotations

from sqlalchemy import func, select

from portal.db import reading
from portal.models import Candidate, Contest, Election, Precinct, User, Voter


def _count(run, model):
    async def go():
        async with reading() as db:
            return await db.scalar(select(func.count()).select_from(model))

    return run(go())


def test_create_user(app, run):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["create-user", "Dana", "--role", "manager", "--password", "a good long password"]
    )
    assert result.exit_code == 0, result.output
    assert "created manager dana" in result.output
    again = runner.invoke(args=["create-user", "dana", "--password", "a good long password"])
    assert again.exit_code == 1 and "taken" in again.output
    weak = runner.invoke(args=["create-user", "eve", "--password", "short"])
    assert weak.exit_code == 2 and "12 characters" in weak.output
    assert _count(run, User) == 1


def test_seed_demo_loads_realistic_data_once(app, run, tmp_path):
    app.instance_path = str(tmp_path)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["seed-demo", "--voters", "500", "--precincts", "6", "--if-empty"])
    assert result.exit_code == 0, result.output
    assert "loaded 6 precincts, 500 voters, 2 elections" in result.output
    assert _count(run, Precinct) == 6 and _count(run, Voter) == 500
    assert _count(run, Election) == 2 and _count(run, Contest) == 4 and _count(run, Candidate) == 12
    assert "admin" in (tmp_path / "demo-logins.txt").read_text()
    again = runner.invoke(args=["seed-demo", "--if-empty"])
    assert "already loaded" in again.output and _count(run, Voter) == 500


def test_seed_demo_with_no_voters(app, run, tmp_path):
    """The benches seed precincts and elections without voters (the import bench loads its own):
    election night then has no check-ins, and nothing fails."""
    app.instance_path = str(tmp_path)
    result = app.test_cli_runner().invoke(args=["seed-demo", "--voters", "0", "--precincts", "6"])
    assert result.exit_code == 0, result.output
    assert _count(run, Voter) == 0 and _count(run, Precinct) == 6


def test_db_upgrade_is_idempotent(app):
    result = app.test_cli_runner().invoke(args=["db-upgrade"])
    assert result.exit_code == 0 and "newest migration" in result.output


def test_the_demo_looks_like_election_night(app, run, tmp_path, client_as):
    """The open demo election has check-ins by method with provisional ballots pending, returns by
    method in every state, and incidents: each return obeys the sum rule and no method's ballots
    exceed the check-ins that issue them."""
    from sqlalchemy import text

    from portal.db import reading

    app.instance_path = str(tmp_path)
    result = app.test_cli_runner().invoke(args=["seed-demo", "--voters", "2000", "--precincts", "10"])
    assert result.exit_code == 0, result.output

    async def facts():
        async with reading() as db:
            one = lambda sql: db.scalar(text(sql))  # noqa: E731
            election = await one("SELECT id FROM election WHERE status = 'open'")
            return {
                "election": election,
                "methods": (await db.execute(text("SELECT DISTINCT method FROM check_in"))).scalars().all(),
                "pending": await one("SELECT count(*) FROM check_in WHERE provisional_status = 'pending'"),
                "states": (await db.execute(text("SELECT DISTINCT status FROM precinct_return")))
                .scalars()
                .all(),
                "return_methods": (await db.execute(text("SELECT DISTINCT method FROM precinct_return")))
                .scalars()
                .all(),
                "silent": await one(
                    "SELECT count(*) FROM election_precinct ep WHERE ep.election_id = "
                    f"{election} AND NOT EXISTS (SELECT 1 FROM precinct_return r WHERE r.precinct_id = "
                    "ep.precinct_id AND r.election_id = ep.election_id)"
                ),
                "broken": await one(
                    "SELECT count(*) FROM precinct_return r JOIN contest c ON c.id = r.contest_id WHERE "
                    "(SELECT coalesce(sum(votes), 0) FROM return_vote v WHERE v.return_id = r.id)"
                    " + r.overvotes + r.undervotes <> r.ballots_cast * c.vote_for"
                ),
                "incidents": (await db.execute(text("SELECT DISTINCT status FROM incident"))).scalars().all(),
            }

    found = run(facts())
    assert sorted(found["methods"]) == ["early", "in_person", "mail", "provisional"]
    assert found["pending"] > 0 and found["broken"] == 0 and found["silent"] > 0
    assert sorted(found["states"]) == ["entered", "verified"]
    assert sorted(found["return_methods"]) == ["absentee", "early", "election_day", "provisional"]
    assert sorted(found["incidents"]) == ["open", "resolved"]
    observer = client_as("observer")
    page = observer.get(f"/elections/{found['election']}/reports/reconciliation").get_data(as_text=True)
    assert "<strong>0</strong> of" in page, "ballots match check-ins in the demo"
    assert observer.get(f"/elections/{found['election']}").status_code == 200
