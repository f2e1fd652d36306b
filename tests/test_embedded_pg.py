"""The embedded PostgreSQL: only when asked for, with no PORTAL_DATABASE_URL and nothing answering."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from portal.embedded_pg import resolve_database_url, server_answers

NOBODY = "postgresql+asyncpg://postgres@127.0.0.1:1/tally_portal"


def test_configured_server_is_used_when_it_answers(database_url):
    assert server_answers(database_url)
    assert (
        resolve_database_url(database_url, from_env=False, embedded=True, instance_path=None) == database_url
    )


def test_environment_url_is_used_as_given():
    assert resolve_database_url(NOBODY, from_env=True, embedded=True, instance_path=None) == NOBODY


def test_production_never_switches_to_the_embedded_server(tmp_path):
    """A configured server that is down is waited for, not replaced by an empty database."""
    assert resolve_database_url(NOBODY, from_env=False, embedded=False, instance_path=tmp_path) == NOBODY
    assert not (tmp_path / "pgdata").exists()


def test_config_file_does_not_ask_for_the_embedded_server():
    from portal.config import load_config

    assert load_config(environ={})["EMBEDDED_DATABASE"] is False
    assert load_config(environ={"PORTAL_EMBEDDED_DATABASE": "true"})["EMBEDDED_DATABASE"] is True


def test_db_upgrade_refuses_a_server_that_does_not_answer():
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("PORTAL_")}
    env["PORTAL_DATABASE_URL"] = NOBODY
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db-upgrade"],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "is not answering" in done.stderr and "Traceback" not in done.stderr


def test_embedded_server_starts_when_nothing_answers(tmp_path):
    import pgserver

    assert not server_answers(NOBODY)
    url = resolve_database_url(NOBODY, from_env=False, embedded=True, instance_path=tmp_path)
    socket_dir = make_url(url).query["host"]
    assert socket_dir.startswith("/") and make_url(url).host is None
    try:

        async def version():
            engine = create_async_engine(url.replace("/tally_portal", "/postgres"))
            try:
                async with engine.connect() as conn:
                    return await conn.scalar(text("SHOW server_version"))
            finally:
                await engine.dispose()

        assert asyncio.run(version()).startswith("16")
    finally:
        server = pgserver.get_server(tmp_path / "pgdata")
        server.cleanup_mode = "stop"  # the portal started it to keep running; the test stops it
        server.cleanup()
        assert not server_answers(url)


def test_without_pgserver_the_embedded_path_says_what_to_install(tmp_path, monkeypatch):
    """The runtime install has no pgserver: asked for the embedded server, it says how to get it."""
    import sys

    import pytest

    monkeypatch.setitem(sys.modules, "pgserver", None)  # `import pgserver` fails as if not installed
    with pytest.raises(RuntimeError, match="make install-embedded"):
        resolve_database_url(NOBODY, from_env=False, embedded=True, instance_path=tmp_path)
    assert not (tmp_path / "pgdata").exists()


def test_the_portal_serves_without_pgserver_where_a_server_answers(database_url):
    import os
    import subprocess
    import sys
    from pathlib import Path

    serve = (
        "import sys; sys.modules['pgserver'] = None\n"  # as in the runtime install
        "from wsgi import app\n"
        "print(app.test_client().get('/health').status_code)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env |= {"PORTAL_DATABASE_URL": database_url, "PORTAL_EMBEDDED_DATABASE": "true"}
    done = subprocess.run(
        [sys.executable, "-c", serve],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.split() == ["200"], done.stderr
