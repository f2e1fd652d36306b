from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, abort, request, stream_with_context

from portal import aio
from portal.audit import queries
from portal.audit.changes import changed_fields
from portal.auth.roles import allow
from portal.clock import iso
from portal.csvfiles import csv_chunks
from portal.db import read, reading
from portal.inputs import arg_int
from portal.rendering import render

bp = Blueprint("audit", __name__, url_prefix="/audit")
AUDITORS = ("admin", "manager")
CSV_CHUNK = 5000


@bp.app_template_filter("audit_changes")
def audit_changes(before, after):
    """{{ event.before|audit_changes(event.after) }}: the fields that changed, one line each."""
    return changed_fields(before, after)


def _filters() -> tuple[dict, list[str]]:
    """The search's filters from the query string, and what was wrong with them (a bad date is left
    out of the search and said so, never silently)."""
    found: dict = {
        name: request.args.get(name, "").strip()[:64] for name in ("q", "user", "entity", "action")
    }
    problems = []
    for name, label in (("since", "From"), ("until", "To")):
        raw = request.args.get(name, "").strip()
        found[name] = None
        if raw:
            try:
                found[name] = date.fromisoformat(raw)
            except ValueError:
                problems.append(f"{label} “{raw[:20]}” is not a date (YYYY-MM-DD); that filter is ignored.")
    if found["since"] and found["until"] and found["since"] > found["until"]:
        problems.append("From is after To: no event can match.")
    return found, problems


@bp.get("")
@allow(*AUDITORS)
async def index():
    filters, problems = _filters()
    before_id = arg_int(request.args, "before")  # ASCII digits within BIGINT, else from the newest
    events = await read(queries.search_events, **filters, before_id=before_id, limit=50)
    link_args = {k: v.isoformat() if isinstance(v, date) else v for k, v in filters.items() if v}
    return render(
        "audit/events.html",
        "audit/_list.html",
        events=events,
        filters=filters,
        problems=problems,
        link_args=link_args,
        next_before=events[-1].id if len(events) == 50 else None,
    )


@bp.get("/events.csv")
@allow(*AUDITORS)
async def events_csv():
    """The filtered audit log as CSV, newest first, streamed in chunks (it can hold millions)."""
    filters, problems = _filters()
    if problems:
        abort(422, " ".join(problems))

    async def chunk(before_id):
        async with reading() as db:
            return await queries.search_events(db, **filters, before_id=before_id, limit=CSV_CHUNK)

    def batches():
        before_id = None
        while True:
            events = aio.run(chunk(before_id))
            yield [
                (
                    e.id,
                    iso(e.created_at),
                    e.username,
                    e.action,
                    e.entity,
                    e.entity_id,
                    e.before if e.before is None else _json(e.before),
                    e.after if e.after is None else _json(e.after),
                    e.hash,
                )
                for e in events
            ]
            if len(events) < CSV_CHUNK:
                return
            before_id = events[-1].id

    header = ["id", "time", "user", "action", "entity", "entity_id", "before", "after", "hash"]
    return Response(
        stream_with_context(csv_chunks(header, batches(), lineterminator="\n")),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'},
    )


def _json(value) -> str:
    import json

    return json.dumps(value, sort_keys=True, ensure_ascii=False)
