"""Engine and sessions. Transactions are owned by the caller of the data layer (views, CLI).

async with transaction() as session:     # commits at the end, rolls back on any error
    await precincts.create_precinct(session, ...)

async with reading() as session:         # read-only work, rolled back at the end
    rows = await precincts.search_precincts(session, ...)
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from flask import current_app, g, has_app_context
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)
T = TypeVar("T")


class Database:
    """The process's engine for one URL, created lazily in each process (pools do not survive fork)."""

    def __init__(self, url: str, *, pool: str = "queue", pool_size: int = 10, max_overflow: int = 10):
        self.url = url
        self.pool = pool
        self.pool_size = pool_size
        self.max_overflow = max_overflow
        self._pid: int | None = None
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None or self._pid != os.getpid():
            if self.pool == "null":
                engine = create_async_engine(self.url, poolclass=NullPool)
            else:
                engine = create_async_engine(
                    self.url,
                    pool_size=self.pool_size,
                    max_overflow=self.max_overflow,
                    pool_timeout=10,
                    pool_recycle=1800,
                    # A server that does not answer is a 503 in 5 s. (No statement timeout: an
                    # import's COPY of a statewide file may rightly run for minutes.)
                    connect_args={"timeout": 5},
                )
                event.listen(engine.sync_engine, "checkout", _replace_if_closed)
            event.listen(engine.sync_engine, "handle_error", _treat_as_disconnect)
            self._engine, self._pid = engine, os.getpid()
            self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        return self._engine

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        self.engine  # noqa: B018 - creates the engine for this process when needed
        assert self._sessions is not None
        return self._sessions

    async def dispose(self) -> None:
        if self._engine is not None and self._pid == os.getpid():
            await self._engine.dispose()
        self._engine = self._sessions = None


# What a lost or refused database connection looks like, from asyncpg and the socket below it.
_CONNECTION_ERRORS = (
    ConnectionError,  # refused, reset, broken pipe
    TimeoutError,  # asyncio.TimeoutError too (an alias since Python 3.11)
    asyncpg.PostgresConnectionError,  # class 08: connection does not exist, failure, ...
    asyncpg.exceptions.InternalClientError,  # "cannot switch to state 12" on a broken connection
    asyncpg.exceptions.AdminShutdownError,  # 57P01: the server is shutting down
    asyncpg.exceptions.CrashShutdownError,  # 57P02
    asyncpg.exceptions.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.exceptions.IdleSessionTimeoutError,
    asyncpg.exceptions.TooManyConnectionsError,  # 53300: out of connections
    sa_exc.TimeoutError,  # the pool had no connection to give in time
)
# The socket's errors that say the server cannot be reached, besides ConnectionError's: a network or
# host that is down or unreachable, an address that cannot be used, a Unix socket file not there.
_UNREACHABLE = {
    errno.ENETDOWN,
    errno.ENETUNREACH,
    errno.ENETRESET,
    errno.EHOSTDOWN,
    errno.EHOSTUNREACH,
    errno.EADDRNOTAVAIL,
    errno.ENOENT,
}


def _unreachable(error: OSError) -> bool:
    """Whether an OSError is the socket saying the server cannot be reached. Not a full disk, a
    read-only or failing file system: those can happen while the driver is on the stack too (a COPY
    reads its source there), and the database is not to blame for them."""
    if isinstance(error, socket.gaierror):
        return True  # an unknown host
    if error.errno is None:  # asyncio's summary when every address of the host refused
        return str(error).startswith("Multiple exceptions")
    return error.errno in _UNREACHABLE


def _raised_in_driver(error: BaseException) -> bool:
    tb = error.__traceback__
    while tb is not None:
        if f"{os.sep}asyncpg{os.sep}" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


def is_connection_failure(error: BaseException | None) -> bool:
    """True when `error`, or what it wraps, says the database could not be reached or the
    connection was lost, as opposed to a refusal of the statement itself (or a full disk)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, _CONNECTION_ERRORS):
            return True
        if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, asyncpg.InterfaceError) and (
            "connection" in str(error) or "another operation is in progress" in str(error)
        ):
            return True  # "connection is closed", a connection left mid-operation by a failure
        if isinstance(error, asyncpg.ObjectNotInPrerequisiteStateError) and (
            "not currently accepting connections" in str(error)
        ):
            return True  # 55000 at connect: the database was taken offline (ALLOW_CONNECTIONS false)
        if isinstance(error, OSError) and _unreachable(error) and _raised_in_driver(error):
            return True  # a missing socket file, an unknown host, "Multiple exceptions: ..."
        error = getattr(error, "orig", None) or error.__cause__ or error.__context__
    return False


def _replace_if_closed(dbapi_connection, record, proxy) -> None:
    """A pooled connection the server has closed is replaced before use, so a database restart
    costs no request once the server is back. A restart or a terminated backend sends the client
    a termination message and closes the socket, and asyncpg marks the connection closed as it
    reads that on the (idle) event loop, so looking costs nothing; a pre-ping round trip on every
    checkout measured 0.28-0.30 ms here."""
    if dbapi_connection.driver_connection.is_closed():
        raise sa_exc.DisconnectionError("the server closed this pooled connection")


def _treat_as_disconnect(context) -> None:
    # SQLAlchemy recognises only "connection is closed" as a disconnect for asyncpg; every other
    # connection-class failure must also discard the connection (and the pool's older ones).
    if not context.is_disconnect and is_connection_failure(context.original_exception):
        context.is_disconnect = True


def database() -> Database:
    return current_app.extensions["portal.db"]


class CommitUncertain(RuntimeError):
    """The connection failed while COMMIT was under way: the change may or may not be stored."""


@asynccontextmanager
async def transaction() -> AsyncIterator[AsyncSession]:
    # A failure in the block or its final flush rolls back (closing the session does): nothing
    # was stored. Only a connection lost during COMMIT itself leaves the outcome unknown.
    async with database().sessions() as session:
        yield session
        await session.flush()
        try:
            await session.commit()
        except Exception as error:
            if is_connection_failure(error):
                raise CommitUncertain("the connection failed during COMMIT") from error
            raise
        if has_app_context():
            g.committed = True  # what fails after this point must not say "nothing was saved"


@asynccontextmanager
async def reading() -> AsyncIterator[AsyncSession]:
    # Closing the session rolls the connection back without expiring the loaded objects, so
    # they stay readable after the block (rollback() would expire them).
    async with database().sessions() as session:
        yield session


async def read(query: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
    """One data-layer read in its own session: `query(session, *args, **kwargs)` (what it returns
    stays readable, as after `reading()`)."""
    async with reading() as db:
        return await query(db, *args, **kwargs)


def make_database(app) -> Database:
    from portal.embedded_pg import resolve_database_url, server_answers

    url = resolve_database_url(
        app.config["DATABASE_URL"],
        from_env=app.config["DATABASE_URL_FROM_ENV"],
        embedded=app.config["EMBEDDED_DATABASE"],
        instance_path=Path(app.instance_path),
    )
    if url == app.config["DATABASE_URL"] and not app.config.get("TESTING") and not server_answers(url, 0.5):
        # Never another database: pages answer 503 (and /health 503) until this one answers.
        log.error("PostgreSQL at %s is not answering; serving 503 until it does", _safe(url))
    app.config["DATABASE_URL"] = url
    return Database(
        url,
        pool=app.config["DATABASE_POOL"],
        pool_size=app.config["DATABASE_POOL_SIZE"],
        max_overflow=app.config["DATABASE_MAX_OVERFLOW"],
    )


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def fetch_numbers(session: AsyncSession, statement) -> list[list]:
    """The rows of a large result of numbers (and short codes), as plain lists, straight from the
    session's asyncpg connection. SQLAlchemy builds a Row per result row at about 7 µs each, ten
    times the driver's cost: 80,000 vote counts take 0.55 s through it and 0.05 s here. Parameters
    are rendered as literals, so a statement given here must bind only numbers (ids)."""
    connection = await session.connection()
    sql = str(statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    raw = await asyncpg_connection(connection)
    return [list(row) for row in await raw.fetch(sql)]


async def asyncpg_connection(connection: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under a SQLAlchemy one in use (for COPY and `fetch_numbers`)."""
    raw = (await connection.get_raw_connection()).driver_connection
    if raw is None:  # SQLAlchemy's None: a connection invalidated, never one checked out and in use
        raise sa_exc.InvalidRequestError("The database connection was invalidated.")
    return raw
