"""Counting groups: the voting methods an election counts and reports separately.

A canvass ("statement of votes cast") shows every precinct's votes split by method; NIST SP 1500-100
calls the split `CountItemType`. Check-ins carry a method of their own (how the ballot was issued),
which matches one counting group each: that pairing drives the ballots-against-check-ins warnings
and the reconciliation report.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.errors import Conflict
from portal.models import VOTING_METHODS, CountingGroup, PrecinctReturn

LABELS = {
    "election_day": "Election Day",
    "early": "Early Voting",
    "absentee": "Absentee/Mail",
    "provisional": "Provisional",
}
SHORT = {"election_day": "Election Day", "early": "Early", "absentee": "Mail", "provisional": "Provisional"}
NIST_TYPES = {
    "election_day": "election-day",
    "early": "early",
    "absentee": "absentee-mail",
    "provisional": "provisional",
}
# Check-in method (how the ballot was issued) -> the counting group its ballot is counted in.
FROM_CHECK_IN = {
    "in_person": "election_day",
    "early": "early",
    "mail": "absentee",
    "provisional": "provisional",
}
assert set(LABELS) == set(SHORT) == set(NIST_TYPES) == set(VOTING_METHODS) == set(FROM_CHECK_IN.values())


def counting_group(check_in_method: str, counted: list[str]) -> str:
    """The counted method whose ballots a check-in's ballot is counted in: its own group, or the
    election's first (Election Day, usually) where its own is not counted: an election that counts
    one figure counts every ballot in it."""
    method = FROM_CHECK_IN[check_in_method]
    return method if method in counted or not counted else counted[0]


def issued_by(method: str, counted: list[str]) -> list[str]:
    """The check-in methods whose ballots `method` counts."""
    return [c for c in FROM_CHECK_IN if counting_group(c, counted) == method]


class MethodRefused(Conflict):
    """A method the election does not count, or removing one that already has returns."""


def in_order(methods) -> list[str]:
    return [m for m in VOTING_METHODS if m in set(methods)]


async def counted(session: AsyncSession, election_id: int) -> list[str]:
    """The methods the election counts, in the canvass's order."""
    rows = await session.scalars(select(CountingGroup.method).where(CountingGroup.election_id == election_id))
    return in_order(rows.all())


async def set_counted(session: AsyncSession, election_id: int, methods: list[str]) -> tuple[list, list]:
    """Make the election count exactly `methods`: (before, after). A method that already has
    returns cannot be removed (its figures would have nowhere to go)."""
    before = await counted(session, election_id)
    after = in_order(methods)
    if not after:
        raise MethodRefused("An election counts at least one voting method. Nothing was changed.")
    dropped = [m for m in before if m not in after]
    if dropped:
        with_returns = (
            await session.scalars(
                select(PrecinctReturn.method)
                .where(PrecinctReturn.election_id == election_id, PrecinctReturn.method.in_(dropped))
                .group_by(PrecinctReturn.method)
                .having(func.count() > 0)
            )
        ).all()
        if with_returns:
            raise MethodRefused(
                "Returns have already been entered for "
                + ", ".join(LABELS[m] for m in in_order(with_returns))
                + ": a method with returns stays counted. Nothing was changed."
            )
        await session.execute(
            delete(CountingGroup).where(
                CountingGroup.election_id == election_id, CountingGroup.method.in_(dropped)
            )
        )
    session.add_all(CountingGroup(election_id=election_id, method=m) for m in after if m not in before)
    await session.flush()
    return before, after


def label(method: str) -> str:
    return LABELS.get(method, method)


def init_app(app) -> None:
    """The methods' names in templates."""
    app.add_template_filter(label, "method")  # "early" -> "Early Voting"
    app.add_template_filter(SHORT.get, "method_short")  # "absentee" -> "Mail" (live panels)
