"""Creating the database and applying Alembic migrations (`flask --app wsgi db-upgrade`)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from portal.config import ROOT

if TYPE_CHECKING:
    from alembic.config import Config


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config  # (imported when used: Alembic takes 60 ms to load)

    config = Config()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    config.attributes["database_url"] = database_url
    return config


async def _create_database(database_url: str) -> bool:
    url = make_url(database_url)
    admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            exists = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
            )
            if not exists:
                quoted = _database_name(url).replace('"', '""')
                await conn.execute(text(f'CREATE DATABASE "{quoted}"'))
            return not exists
    finally:
        await admin.dispose()


def _database_name(url: URL) -> str:
    if not url.database:
        raise ValueError(f"{url.render_as_string()} names no database")
    return url.database


async def _drop_database(database_url: str) -> None:
    url = make_url(database_url)
    admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            quoted = _database_name(url).replace('"', '""')
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{quoted}" WITH (FORCE)'))
    finally:
        await admin.dispose()


def create_database(database_url: str) -> bool:
    """Create the database when missing; True when it was created."""
    return asyncio.run(_create_database(database_url))


def drop_database(database_url: str) -> None:
    asyncio.run(_drop_database(database_url))


def upgrade(database_url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)
