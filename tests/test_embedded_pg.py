"""With no PostgreSQL answering and no PORTAL_DATABASE_URL, the portal starts an embedded one."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from portal.embedded_pg import resolve_database_url, server_answers

NOBODY = "postgresql+asyncpg://postgres@127.0.0.1:1/tally_portal"


def test_configured_server_is_used_when_it_answers(database_url):
    assert server_answers(database_url)
    assert resolve_database_url(database_url, from_env=False, instance_path=None) == database_url


def test_environment_url_is_used_as_given():
    assert resolve_database_url(NOBODY, from_env=True, instance_path=None) == NOBODY


def test_embedded_server_starts_when_nothing_answers(tmp_path):
    import pgserver

    assert not server_answers(NOBODY)
    url = resolve_database_url(NOBODY, from_env=False, instance_path=tmp_path)
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
