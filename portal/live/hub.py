"""One hub per process: a LISTEN connection, the subscribers, and the latest bytes of each panel.

A write sends a domain signal; `receivers.py` announces the panels it changed with pg_notify
inside the write's own transaction (so only committed changes are announced, to every worker).
The hub renders a changed panel at once (the leading edge) and hands the same bytes to every
subscriber of that election; changes that arrive while it renders, or within the change window
after, are rendered once together when the window ends. Templates are rendered in a thread, off
the event loop. The latest bytes are kept, so a browser that (re)connects gets the current state at
once.

The hub never gives up. A supervisor task holds the LISTEN connection, pings it, and on any failure
(a restart, a refused connection, a silent network) tells every subscriber its figures are stale,
forgets the kept panels, and connects again with capped, jittered back-off; once listening again it
renders every watched panel afresh. Nothing waits on the hub without a time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import json
import logging
import os
import queue
import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from portal.db import is_connection_failure
from portal.live.panels import ALL, render_panels

log = logging.getLogger(__name__)
CHANNEL = "tally_portal_live"


async def announce(session: AsyncSession, election_id: int, *panels: str) -> None:
    """Tell every process that these panels of the election changed (sent when the transaction
    commits; nothing is sent if it rolls back)."""
    payload = json.dumps({"election": election_id, "panels": list(panels) or [ALL]})
    await session.execute(
        text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload}
    )


BACKOFF_FIRST = 0.1  # seconds before the first reconnection attempt, doubling up to
BACKOFF_MAX = 1.0  # (jittered: each wait is between half and all of the current delay)
CONNECT_TIMEOUT = 5.0
PING_SECONDS = 5.0  # a quiet LISTEN connection is checked this often
PING_TIMEOUT = 3.0
RENDER_RETRY_SECONDS = 1.0
RENDER_TIMEOUT = 30.0  # a render stuck on a silently dead connection must not hold the panels
STALE = b"event: stale\ndata: The live figures are reconnecting.\n\n"
HEARTBEAT = b"event: heartbeat\ndata: ok\n\n"


class HubUnavailable(RuntimeError):
    """The hub could not serve a new subscriber in time (no LISTEN connection)."""


def sse_message(event: str, html: str, event_id: int) -> bytes:
    """One SSE event; every line of a multi-line HTML body needs its own `data:` prefix."""
    data = "\n".join(f"data: {line}" for line in html.splitlines() or [""])
    return f"event: {event}\nid: {event_id}\n{data}\n\n".encode()


@dataclass(eq=False)
class Subscriber:
    election_id: int
    messages: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)


class Hub:
    def __init__(self, app: Flask):
        self.app = app
        self.subscribers: dict[int, set[Subscriber]] = {}
        self.latest: dict[int, dict[str, bytes]] = {}
        # When each panel was last announced as changed, while listening without a break: what
        # "last change HH:MM:SS" on a panel means. Forgotten when the connection is lost (changes
        # made meanwhile were not heard), so a panel then says "no change since" its render.
        self.changed: dict[int, dict[str, datetime]] = {}
        self.dirty: dict[int, set[str]] = {}
        self.flushing: set[int] = set()
        self.rendering: dict[int, asyncio.Task] = {}  # first render of an election, shared
        self.ids = itertools.count(1)
        self.lock = threading.Lock()
        self.listener: asyncpg.Connection | None = None
        self.connected = asyncio.Event()  # the LISTEN connection is up: figures are live
        self.supervisor: asyncio.Task | None = None
        self.window = app.config["LIVE_CHANGE_WINDOW_MS"] / 1000
        self.pid = os.getpid()
        self.renders = 0  # panels rendered (tests check coalescing)
        self.reconnects = 0  # LISTEN connections made after a loss (tests, /health)
        self.closing = False

    # The listening connection ------------------------------------------------------------------

    def ensure_running(self) -> None:
        """Called on the loop: start the supervisor unless it runs."""
        if not self.closing and (self.supervisor is None or self.supervisor.done()):
            self.supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def _connect(self) -> asyncpg.Connection:
        url = make_url(self.app.config["DATABASE_URL"])
        return await asyncpg.connect(
            host=url.query.get("host") or url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            database=url.database,
            timeout=CONNECT_TIMEOUT,
        )

    async def _supervise(self) -> None:
        delay, failures, ever = BACKOFF_FIRST, 0, False
        while not self.closing:
            connection = None
            try:
                connection = await asyncio.wait_for(self._connect(), CONNECT_TIMEOUT + 1)
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, self._notified)
                self.listener = connection
                self.connected.set()
                if ever:
                    self.reconnects += 1
                    log.warning("live: listening again (after %d failed attempts)", failures)
                ever, delay, failures = True, BACKOFF_FIRST, 0
                for election_id in self.watched():  # anything may have changed meanwhile
                    self.mark(election_id, {ALL})
                await self._watch(connection, lost)
                if not self.closing:
                    log.error("live: the LISTEN connection was lost; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures += 1
                if failures == 1:
                    log.error("live: cannot listen (%r); retrying", error)
            finally:
                was_live = self.connected.is_set()
                self.connected.clear()
                self.listener = None
                if connection is not None and not connection.is_closed():
                    connection.terminate()
                if was_live:
                    self._went_stale()
            if not self.closing:
                await asyncio.sleep(random.uniform(delay / 2, delay))
                delay = min(delay * 2, BACKOFF_MAX)

    async def _watch(self, connection: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Return when the connection ends; raise when a ping fails (a connection can also die
        silently, behind a network that drops packets)."""
        while not self.closing:
            try:
                await asyncio.wait_for(lost.wait(), PING_SECONDS)
                return
            except TimeoutError:
                await asyncio.wait_for(connection.fetchval("SELECT 1"), PING_TIMEOUT)

    def _went_stale(self) -> None:
        """Tell every subscriber its figures may be old, and forget the kept panels: a browser that
        connects from now on gets freshly rendered ones."""
        self.latest.clear()
        self.dirty.clear()
        self.changed.clear()
        with self.lock:
            watching = [s for group in self.subscribers.values() for s in group]
        for subscriber in watching:
            subscriber.messages.put(STALE)

    def _notified(self, connection, pid, channel, payload: str) -> None:
        try:
            message = json.loads(payload)
            election_id, panels = int(message["election"]), set(message["panels"])
            now = datetime.now(UTC)
            self.changed.setdefault(election_id, {}).update(dict.fromkeys(map(str, panels), now))
            self.mark(election_id, panels)
        except (ValueError, KeyError, TypeError):
            log.warning("live: ignored a malformed notification %r", payload[:200])

    # Coalescing and rendering --------------------------------------------------------------------

    def mark(self, election_id: int, panels: set[str]) -> None:
        """Called on the loop: remember what changed, and start rendering at once unless a render
        of this election is in flight or cooling down (it will pick the change up)."""
        self.dirty.setdefault(election_id, set()).update(panels)
        if election_id not in self.flushing:
            self.flushing.add(election_id)
            asyncio.get_running_loop().create_task(self._flush(election_id))

    async def _flush(self, election_id: int) -> None:
        """Render on the leading edge: a change that finds nothing in flight is rendered at once.
        After each render the window passes before the next; whatever changed during the render or
        the window is rendered once, together, when it ends (a burst of 100 returns in a second
        renders each panel about 1 + 1 s / window times)."""
        try:
            while not self.closing:
                panels = self.dirty.pop(election_id, set())
                if not panels:
                    return
                if not self.subscribers.get(election_id):
                    self.latest.pop(election_id, None)  # nobody watches: render on the next connect
                    return
                try:
                    messages = await asyncio.wait_for(self.render(election_id, panels), RENDER_TIMEOUT)
                except Exception as error:
                    if is_connection_failure(error):
                        log.warning("live: rendering election %s failed: %r", election_id, error)
                    else:
                        log.exception("live: rendering the panels of election %s failed", election_id)
                    self._send(election_id, [STALE])
                    if self.connected.is_set():  # else reconnecting renders everything anyway
                        # Every panel again, not only these: each page that was told "stale" must
                        # get a panel it shows to be told "live" again.
                        self.dirty.setdefault(election_id, set()).add(ALL)
                        await asyncio.sleep(RENDER_RETRY_SECONDS)
                    return
                self._send(election_id, messages)
                await asyncio.sleep(self.window)
        finally:
            self.flushing.discard(election_id)
            if self.dirty.get(election_id) and not self.closing:  # (a failed render's retry)
                self.mark(election_id, set())

    def _send(self, election_id: int, messages: list[bytes]) -> None:
        with self.lock:
            watching = list(self.subscribers.get(election_id, ()))
        for subscriber in watching:
            for message in messages:
                subscriber.messages.put(message)

    async def render(self, election_id: int, panels: set[str]) -> list[bytes]:
        """Render the named panels (or all) once; keep and return their SSE messages."""
        with self.app.app_context():
            changed = dict(self.changed.get(election_id, {}))
            rendered = await render_panels(election_id, None if ALL in panels else panels, changed)
        messages = []
        store = self.latest.setdefault(election_id, {})
        for event, html in rendered.items():
            message = sse_message(event, html, next(self.ids))
            store[event] = message
            messages.append(message)
        self.renders += len(rendered)
        return messages

    async def _current(self, election_id: int) -> list[bytes]:
        """The kept panels of the election, rendered first if needed (once, however many browsers
        ask at the same moment: after an outage they all come back together)."""
        current = self.latest.get(election_id)
        if current:
            return list(current.values())
        task = self.rendering.get(election_id)
        if task is None:
            # In a context of its own: the panels are the same bytes for everyone, whoever asked.
            task = self.rendering[election_id] = asyncio.get_running_loop().create_task(
                asyncio.wait_for(self.render(election_id, {ALL}), RENDER_TIMEOUT),
                context=contextvars.Context(),
            )
            task.add_done_callback(lambda _task: self.rendering.pop(election_id, None))
        return list(await asyncio.shield(task))

    # Subscribers ---------------------------------------------------------------------------------

    def count(self) -> int:
        with self.lock:
            return sum(len(s) for s in self.subscribers.values())

    def watched(self) -> list[int]:
        with self.lock:
            return [election_id for election_id, group in self.subscribers.items() if group]

    async def subscribe(self, election_id: int, wait: float) -> tuple[Subscriber, list[bytes]]:
        """A new subscriber and the current state of every panel of the election. Raises
        HubUnavailable when the hub is not listening within `wait` seconds or the panels cannot be
        rendered in time (the caller tells the browser to retry)."""
        self.ensure_running()
        try:
            await asyncio.wait_for(self.connected.wait(), wait)
        except TimeoutError:
            raise HubUnavailable("the live hub is not listening") from None
        subscriber = Subscriber(election_id)
        with self.lock:
            self.subscribers.setdefault(election_id, set()).add(subscriber)
        try:
            current = await asyncio.wait_for(self._current(election_id), wait)
        except BaseException as error:
            self.unsubscribe(subscriber)
            if isinstance(error, TimeoutError):
                raise HubUnavailable("the live panels could not be rendered in time") from None
            raise
        return subscriber, current

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self.lock:
            watching = self.subscribers.get(subscriber.election_id)
            if watching:
                watching.discard(subscriber)
                if not watching:
                    del self.subscribers[subscriber.election_id]


_hubs: dict[int, Hub] = {}
_lock = threading.Lock()


async def hub_for(app: Flask) -> Hub:
    """This process's hub for `app`, its supervisor running (a new one in a forked child). It does
    not wait for the LISTEN connection: `subscribe` does, with a limit."""
    key = id(app)
    with _lock:
        hub = _hubs.get(key)
        if hub is None or hub.pid != os.getpid():
            hub = _hubs[key] = Hub(app)
    hub.ensure_running()
    return hub


def existing_hub(app: Flask) -> Hub | None:
    hub = _hubs.get(id(app))
    return hub if hub is not None and hub.pid == os.getpid() else None


async def close_hub(app: Flask) -> None:
    """Stop this process's hub for `app` (tests, shutdown): no reconnecting afterwards."""
    with _lock:
        hub = _hubs.pop(id(app), None)
    if hub is not None and hub.pid == os.getpid():
        hub.closing = True
        if hub.supervisor is not None:
            hub.supervisor.cancel()
            with contextlib.suppress(BaseException):  # cancelled, or it had failed: it stopped
                await hub.supervisor
        if hub.listener is not None and not hub.listener.is_closed():
            await hub.listener.close()
