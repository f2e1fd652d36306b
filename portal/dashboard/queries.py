from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.models import Contest, Election, Precinct
from portal.voters.search import roll_size


async def current_elections(session: AsyncSession) -> list[tuple[Election, int]]:
    """Elections not yet certified, soonest first, with their number of contests."""
    contests = (
        select(func.count()).where(Contest.election_id == Election.id).correlate(Election).scalar_subquery()
    )
    rows = await session.execute(
        select(Election, contests)
        .where(Election.status != "certified")
        .order_by(Election.election_date, Election.id)
    )
    return [tuple(row) for row in rows.all()]


async def roll_overview(session: AsyncSession) -> dict[str, int]:
    """Voters on the roll (exact and cheap: kept by triggers, see `roll_size`) and precincts."""
    precincts = await session.scalar(select(func.count()).select_from(Precinct)) or 0
    return {"voters": await roll_size(session), "precincts": precincts}
