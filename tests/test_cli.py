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


def test_db_upgrade_is_idempotent(app):
    result = app.test_cli_runner().invoke(args=["db-upgrade"])
    assert result.exit_code == 0 and "newest migration" in result.output
