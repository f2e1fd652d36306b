from flask import Blueprint, request

from portal.audit import queries
from portal.auth.roles import allow
from portal.db import reading
from portal.rendering import render

bp = Blueprint("audit", __name__, url_prefix="/audit")


@bp.get("")
@allow("admin", "manager")
async def index():
    filters = {name: request.args.get(name, "").strip()[:64] for name in ("q", "user", "entity", "action")}
    before_id = request.args.get("before", type=int)
    async with reading() as db:
        events = await queries.search_events(db, **filters, before_id=before_id, limit=50)
    return render(
        "audit/events.html",
        "audit/_list.html",
        events=events,
        filters=filters,
        next_before=events[-1].id if len(events) == 50 else None,
    )
