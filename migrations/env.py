"""Alembic environment (async, asyncpg). The URL comes from the portal's configuration:
run migrations with `flask --app wsgi db-upgrade`."""

import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from portal.models import Base

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    url = config.attributes.get("database_url")
    if not url:
        from portal.config import load_config

        url = load_config()["DATABASE_URL"]
    return url


def run_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = create_async_engine(database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    asyncio.run(run_online())
