"""One hub per process: a LISTEN connection, the subscribers, and the latest bytes of each panel.

A write announces the panels it changed with pg_notify inside its own transaction (so only
committed changes are announced, to every worker). The hub marks them dirty; after the change
window it renders each dirty panel once and hands the same bytes to every subscriber of that
election. The latest bytes are kept, so a browser that (re)connects gets the current state at once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import queue
import threading
from dataclasses import dataclass, field

import asyncpg
from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)
CHANNEL = "tally_portal_live"
ALL = "*"


async def announce(session: AsyncSession, election_id: int, *panels: str) -> None:
    """Tell every process that these panels of the election changed (sent when the transaction
    commits; nothing is sent if it rolls back)."""
    payload = json.dumps({"election": election_id, "panels": list(panels) or [ALL]})
    await session.execute(
        text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload}
    )


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
        self.dirty: dict[int, set[str]] = {}
        self.flushing: set[int] = set()
        self.ids = itertools.count(1)
        self.lock = threading.Lock()
        self.listener: asyncpg.Connection | None = None
        self.started = asyncio.Event()
        self.window = app.config["LIVE_CHANGE_WINDOW_MS"] / 1000
        self.pid = os.getpid()
        self.renders = 0  # panels rendered (tests check coalescing)
        self.closing = False

    # The listening connection ------------------------------------------------------------------

    async def start(self) -> None:
        url = make_url(self.app.config["DATABASE_URL"])
        self.listener = await asyncpg.connect(
            host=url.query.get("host") or url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            database=url.database,
        )
        await self.listener.add_listener(CHANNEL, self._notified)
        self.listener.add_termination_listener(self._lost)
        self.started.set()

    def _lost(self, connection) -> None:
        if self.closing:
            return
        log.error("live: the LISTEN connection was lost; reconnecting")
        self.started.clear()
        asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        while not self.started.is_set() and not self.closing:
            try:
                await self.start()
            except OSError:
                await asyncio.sleep(2)
        for election_id in list(self.subscribers):  # anything may have changed meanwhile
            self.mark(election_id, {ALL})

    def _notified(self, connection, pid, channel, payload: str) -> None:
        try:
            message = json.loads(payload)
            self.mark(int(message["election"]), set(message["panels"]))
        except (ValueError, KeyError, TypeError):
            log.warning("live: ignored a malformed notification %r", payload[:200])

    # Coalescing and rendering --------------------------------------------------------------------

    def mark(self, election_id: int, panels: set[str]) -> None:
        """Called on the loop: remember what changed; render once when the window closes."""
        self.dirty.setdefault(election_id, set()).update(panels)
        if election_id not in self.flushing:
            self.flushing.add(election_id)
            asyncio.get_running_loop().create_task(self._flush_later(election_id))

    async def _flush_later(self, election_id: int) -> None:
        try:
            await asyncio.sleep(self.window)
            panels = self.dirty.pop(election_id, set())
            if not self.subscribers.get(election_id):
                self.latest.pop(election_id, None)  # nobody watches: render on the next connect
                return
            messages = await self.render(election_id, panels)
            with self.lock:
                watching = list(self.subscribers.get(election_id, ()))
            for subscriber in watching:
                for message in messages:
                    subscriber.messages.put(message)
        except Exception:
            log.exception("live: rendering the panels of election %s failed", election_id)
        finally:
            self.flushing.discard(election_id)
            if self.dirty.get(election_id):  # changes that arrived while rendering
                self.mark(election_id, set())

    async def render(self, election_id: int, panels: set[str]) -> list[bytes]:
        """Render the named panels (or all) once; keep and return their SSE messages."""
        from portal.live.panels import render_panels

        with self.app.app_context():
            rendered = await render_panels(election_id, None if ALL in panels else panels)
        messages = []
        store = self.latest.setdefault(election_id, {})
        for event, html in rendered.items():
            message = sse_message(event, html, next(self.ids))
            store[event] = message
            messages.append(message)
        self.renders += len(rendered)
        return messages

    # Subscribers ---------------------------------------------------------------------------------

    def count(self) -> int:
        with self.lock:
            return sum(len(s) for s in self.subscribers.values())

    async def subscribe(self, election_id: int) -> tuple[Subscriber, list[bytes]]:
        """A new subscriber and the current state of every panel of the election."""
        await self.started.wait()
        subscriber = Subscriber(election_id)
        with self.lock:
            self.subscribers.setdefault(election_id, set()).add(subscriber)
        current = self.latest.get(election_id)
        if not current:
            await self.render(election_id, {ALL})
            current = self.latest.get(election_id, {})
        return subscriber, list(current.values())

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
    """This process's hub for `app`, started on first use (and again in a forked child)."""
    key = id(app)
    with _lock:
        hub = _hubs.get(key)
        if hub is None or hub.pid != os.getpid():
            hub = _hubs[key] = Hub(app)
            fresh = True
        else:
            fresh = False
    if fresh:
        await hub.start()
    await hub.started.wait()
    return hub


async def close_hub(app: Flask) -> None:
    """Stop this process's hub for `app` (tests, shutdown): no reconnecting afterwards."""
    with _lock:
        hub = _hubs.pop(id(app), None)
    if hub is not None and hub.pid == os.getpid():
        hub.closing = True
        if hub.listener is not None and not hub.listener.is_closed():
            await hub.listener.close()
