"""The election lifecycle: forward moves only, each by the roles allowed to make it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from portal.errors import NotFound
from portal.models import Election


@dataclass(frozen=True)
class Move:
    to: str
    label: str
    consequence: str
    roles: tuple[str, ...]
    button: str


MOVES: dict[str, Move] = {
    "draft": Move(
        "open",
        "Open the election",
        "Check-in and returns entry start. The ballot (contests, candidates and their order) "
        "can no longer change; names and candidate status can still be corrected.",
        ("admin", "manager"),
        "btn-success",
    ),
    "open": Move(
        "closed",
        "Close the election",
        "Check-in stops. Each precinct's registered voters are fixed as of now for this election's "
        "turnout. Returns can still be entered, corrected and verified.",
        ("admin", "manager"),
        "btn-warning",
    ),
    "closed": Move(
        "certified",
        "Certify the results",
        "After certification nothing in this election can be edited, by anyone. The canvass is "
        "recorded as it stands, with its fingerprint in the audit trail: every report and export of "
        "it will read the same from now on, whatever later changes on the roll, a precinct or a party.",
        ("admin", "manager"),
        "btn-primary",
    ),
}


def next_move(status: str) -> Move | None:
    return MOVES.get(status)


async def lock_election(session: AsyncSession, election_id: int) -> Election:
    """The election, share-locked until the transaction ends (and read afresh, not from the
    session's cache). Every write whose rule depends on the election's status takes this lock
    first: a status move takes the row exclusively (`move_election`), so it waits for the writes
    under way, and a write that comes during a move waits for it and then sees the new status.
    Without it, certifying could commit while a return was being saved, and the return land after."""
    return await find_election(session, election_id, with_for_update={"read": True}, populate_existing=True)


async def find_election(session: AsyncSession, election_id: int, **options) -> Election:
    """The election, or NotFound: every look-up of an election by its id comes here. `options` are
    session.get()'s (a row lock, `populate_existing`)."""
    election = await session.get(Election, election_id, **options)
    if election is None:
        raise NotFound("election")
    return election
