"""GET /live/elections/<id>/stream: the election's panels as Server-Sent Events."""

from __future__ import annotations

import queue
import socket
import time

from flask import Blueprint, Response, current_app, request, session
from sqlalchemy import select

from portal import aio
from portal.auth.queries import SESSION_KEY
from portal.auth.roles import EVERY_ROLE, allow
from portal.db import is_connection_failure, reading
from portal.elections.queries import get_election
from portal.errors import NotFound, stale_stream
from portal.live.hub import HEARTBEAT, STALE, HubUnavailable, hub_for

bp = Blueprint("live", __name__, url_prefix="/live")
RETRY_MS = 3000
REFUSED_RETRY_MS = 30_000
CLOSED_CHECK_SECONDS = 1.0


def _headers() -> dict[str, str]:
    return {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


@bp.get("/elections/<int:election_id>/stream")
@allow(*EVERY_ROLE)
async def stream(election_id: int):
    async with reading() as db:
        election = await get_election(db, election_id)  # 404 for an election that does not exist
    if election.status == "draft":
        raise NotFound("live results", "A draft election has no live results.")
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # current_app is a LocalProxy
    hub = await hub_for(app)
    limit = app.config["LIVE_MAX_STREAMS"]
    if hub.count() >= limit:
        html = (
            '<span class="text-warning-emphasis">Live updates paused: this server holds its limit of '
            f"{limit} live connections. Retrying in 30 s.</span>"
        )
        message = f"retry: {REFUSED_RETRY_MS}\nevent: refused\ndata: {html}\n\n"
        return Response(message, mimetype="text/event-stream", headers=_headers())
    try:
        subscriber, current = await hub.subscribe(election_id, app.config["LIVE_SUBSCRIBE_WAIT_SECONDS"])
    except HubUnavailable:
        return stale_stream(RETRY_MS)  # the browser shows "reconnecting" and tries again
    heartbeat = app.config["LIVE_HEARTBEAT_SECONDS"]
    recheck = app.config["LIVE_SESSION_CHECK_SECONDS"]
    token = session.get(SESSION_KEY)
    client = request.environ.get("gunicorn.socket") or request.environ.get("werkzeug.socket")

    def events():
        # A sync generator (Flask cannot stream an async one): it blocks this request's thread
        # on the subscriber's queue, which the hub fills from the event loop. Every second it
        # also looks at the socket, so a browser that leaves frees its place at once. A quiet
        # stream sends a heartbeat the page can see, or "stale" while the hub is not listening.
        try:
            yield f"retry: {RETRY_MS}\n\n".encode()
            yield from current
            quiet = 0.0
            checked = time.monotonic()
            while True:
                try:
                    yield subscriber.messages.get(timeout=min(heartbeat, CLOSED_CHECK_SECONDS))
                    quiet = 0.0
                except queue.Empty:
                    if client is not None and hung_up(client):
                        return
                    quiet += min(heartbeat, CLOSED_CHECK_SECONDS)
                    if quiet >= heartbeat:
                        quiet = 0.0
                        yield HEARTBEAT if hub.connected.is_set() else STALE
                # A stream outlives no sign-out: signed out here or everywhere, deactivated, a
                # new password or a reset second factor end its session, and then the stream.
                if time.monotonic() - checked >= recheck:
                    checked = time.monotonic()
                    if not still_signed_in(app, token):
                        yield SIGNED_OUT
                        return
        finally:
            hub.unsubscribe(subscriber)

    return Response(events(), mimetype="text/event-stream", headers=_headers())


SIGNED_OUT = b"event: signed-out\ndata: Your session ended.\n\n"


def still_signed_in(app, token: str | None) -> bool:
    """Whether the stream's session still exists (True while the database cannot say: an outage
    must not close every live panel)."""
    from portal.auth.queries import digest
    from portal.models import UserSession

    async def look() -> bool:
        async with reading() as db:
            found = await db.scalar(
                select(UserSession.id).where(UserSession.token_hash == digest(token or ""))
            )
            return found is not None

    try:
        with app.app_context():
            return aio.run(look())
    except Exception as error:
        if is_connection_failure(error):
            return True
        raise


def hung_up(client: socket.socket) -> bool:
    """True when the browser closed its end, without blocking or consuming anything. (No select():
    it fails for descriptors above 1,023, and a worker holding 1,000 streams has those.)"""
    try:
        return client.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False  # nothing to read: still there
    except OSError:
        return True


def streams_open(app) -> int:
    """Live streams this process holds (for tests and benchmarks)."""
    return aio.run(hub_for(app)).count()
