from flask import Blueprint

from portal.auth.roles import EVERY_ROLE, allow
from portal.dashboard import queries
from portal.db import reading
from portal.rendering import render

bp = Blueprint("dashboard", __name__)


@bp.get("/")
@allow(*EVERY_ROLE)
async def index():
    async with reading() as db:
        elections = await queries.current_elections(db)
        overview = await queries.roll_overview(db)
    return render("dashboard/index.html", elections=elections, overview=overview)
