"""GET /health: may this worker take traffic? For load balancers and monitors; no sign-in.

    200 {"status": "ok", "database": true, "live": {"listening": true, "streams": 12}, "version": "0.1.0"}
    503 {"status": "unavailable", "database": false, ...}

It reveals nothing else: no addresses, names, counts of voters or errors.
"""

from __future__ import annotations

import asyncio
import contextlib

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from portal.auth.roles import public
from portal.db import is_connection_failure, reading
from portal.live.hub import hub_for

bp = Blueprint("health", __name__)
LISTEN_WAIT_SECONDS = 1.0  # a hub started by this very request gets a moment to connect


@bp.get("/health")
@public
async def health():
    database_ok = True
    try:
        async with reading() as db:
            await db.execute(text("SELECT 1"))
    except Exception as error:
        if not is_connection_failure(error):
            raise
        database_ok = False
    hub = await hub_for(current_app._get_current_object())
    if database_ok and not hub.connected.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(hub.connected.wait(), LISTEN_WAIT_SECONDS)
    listening = hub.connected.is_set()
    ok = database_ok and listening
    body = {
        "status": "ok" if ok else "unavailable",
        "database": database_ok,
        "live": {"listening": listening, "streams": hub.count()},
        "version": current_app.config["VERSION"],
    }
    return jsonify(body), 200 if ok else 503
