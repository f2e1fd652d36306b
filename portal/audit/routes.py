from __future__ import annotations

import csv
import io
from datetime import date

from flask import Blueprint, Response, request, stream_with_context

from portal import aio
from portal.audit import queries
from portal.auth.roles import allow
from portal.db import reading
from portal.rendering import render
from portal.voters.queries import neutralise

bp = Blueprint("audit", __name__, url_prefix="/audit")
AUDITORS = ("admin", "manager")
CSV_CHUNK = 5000


def _day(name: str) -> date | None:
    try:
        return date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None


def _filters() -> dict:
    found = {name: request.args.get(name, "").strip()[:64] for name in ("q", "user", "entity", "action")}
    return {**found, "since": _day("since"), "until": _day("until")}


@bp.get("")
@allow(*AUDITORS)
async def index():
    filters = _filters()
    before_id = request.args.get("before", type=int)
    async with reading() as db:
        events = await queries.search_events(db, **filters, before_id=before_id, limit=50)
    link_args = {k: v.isoformat() if isinstance(v, date) else v for k, v in filters.items() if v}
    return render(
        "audit/events.html",
        "audit/_list.html",
        events=events,
        filters=filters,
        link_args=link_args,
        next_before=events[-1].id if len(events) == 50 else None,
    )


@bp.get("/events.csv")
@allow(*AUDITORS)
async def events_csv():
    """The filtered audit log as CSV, newest first, streamed in chunks (it can hold millions)."""
    filters = _filters()

    async def chunk(before_id):
        async with reading() as db:
            return await queries.search_events(db, **filters, before_id=before_id, limit=CSV_CHUNK)

    def generate():
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(
            ["id", "time_utc", "user", "action", "entity", "entity_id", "before", "after", "hash"]
        )
        before_id = None
        while True:
            events = aio.run(chunk(before_id))
            for e in events:
                writer.writerow(
                    [
                        neutralise(v)
                        for v in (
                            e.id,
                            e.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                            e.username,
                            e.action,
                            e.entity,
                            e.entity_id,
                            e.before if e.before is None else _json(e.before),
                            e.after if e.after is None else _json(e.after),
                            e.hash,
                        )
                    ]
                )
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if len(events) < CSV_CHUNK:
                return
            before_id = events[-1].id

    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'},
    )


def _json(value) -> str:
    import json

    return json.dumps(value, sort_keys=True, ensure_ascii=False)
