"""Party data access."""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit.queries import snapshot
from portal.editing import delete_audited, get_for_edit, insert_audited, save_changes
from portal.errors import Conflict, FieldError, NotFound
from portal.formatting import number
from portal.models import Candidate, Party, User, Voter

AUDITED = ("name", "abbreviation", "colour")


class PartyInUse(Conflict):
    pass


async def list_parties(session: AsyncSession) -> list[tuple[Party, int]]:
    """Parties with their number of candidates."""
    candidates = select(func.count()).where(Candidate.party_id == Party.id).scalar_subquery()
    return [tuple(r) for r in (await session.execute(select(Party, candidates).order_by(Party.name))).all()]


async def party_choices(session: AsyncSession) -> list[Party]:
    return list((await session.scalars(select(Party).order_by(Party.name))).all())


async def get_party(session: AsyncSession, party_id: int) -> Party:
    """The party, or NotFound."""
    party = await session.get(Party, party_id)
    if party is None:
        raise NotFound("party")
    return party


async def _check_unique(session: AsyncSession, name: str, abbreviation: str, except_id: int | None) -> None:
    query = select(Party).where(
        or_(func.lower(Party.name) == name.lower(), Party.abbreviation == abbreviation)
    )
    if except_id is not None:
        query = query.where(Party.id != except_id)
    clash = await session.scalar(query.limit(1))
    if clash is not None:
        if clash.abbreviation == abbreviation:
            raise FieldError("abbreviation", f"{abbreviation} is already the abbreviation of {clash.name}.")
        raise FieldError("name", f"A party named {clash.name} already exists.")


async def create_party(session: AsyncSession, *, actor: User, data: dict) -> Party:
    await _check_unique(session, data["name"], data["abbreviation"], None)
    party = Party(**data, updated_by_id=actor.id)
    taken = FieldError("name", "A party with this name or abbreviation already exists.")
    return await insert_audited(session, party, actor=actor, entity="party", fields=AUDITED, taken=taken)


async def update_party(
    session: AsyncSession, *, actor: User, party_id: int, seen_version: int | None, data: dict
) -> Party:
    gone = "This party was deleted meanwhile; nothing was saved."
    party = await get_for_edit(
        session, Party, party_id, seen_version, noun="party", fields=AUDITED, gone=gone
    )
    await _check_unique(session, data["name"], data["abbreviation"], party_id)
    before = snapshot(party, AUDITED)
    for key, value in data.items():
        setattr(party, key, value)
    await save_changes(session, party, before, snapshot(party, AUDITED), actor=actor, entity="party")
    return party


async def delete_party(session: AsyncSession, *, actor: User, party_id: int) -> Party:
    party = await session.get(Party, party_id, with_for_update=True)
    if party is None:
        raise NotFound("party", "This party was already deleted.")
    candidates = await session.scalar(select(func.count()).where(Candidate.party_id == party_id))
    voters = await session.scalar(select(func.count()).where(Voter.party_id == party_id))
    if candidates or voters:
        raise PartyInUse(
            f"{party.name} is the party of {number(candidates)} "
            f"candidate{'s' if candidates != 1 else ''} and "
            f"{number(voters)} voter{'s' if voters != 1 else ''}; it cannot be deleted."
        )
    await delete_audited(session, party, actor=actor, entity="party", fields=AUDITED)
    return party
