from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from portal.models import Contest, Election, Precinct, Voter


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


async def roll_overview(session: AsyncSession) -> dict[str, int | bool]:
    """Voters on the roll (the planner's estimate above 100,000 rows: an exact count of a
    million-row roll costs a full scan) and precincts."""
    estimate = await session.scalar(
        text("SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE oid = 'voter'::regclass")
    )
    exact = estimate < 100_000
    voters = await session.scalar(select(func.count()).select_from(Voter)) if exact else estimate
    precincts = await session.scalar(select(func.count()).select_from(Precinct)) or 0
    return {"voters": voters or 0, "voters_exact": exact, "precincts": precincts}
