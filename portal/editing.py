"""Optimistic concurrency: every edit form carries the row's `version`; a save over a newer
version is refused, naming who changed the row and when, and nothing is overwritten."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit.queries import record_event, snapshot
from portal.clock import date_time
from portal.errors import DomainError, StaleEdit
from portal.models import User


async def insert_audited(
    session: AsyncSession,
    row: Any,
    *,
    actor: User | None,
    entity: str,
    fields: tuple[str, ...],
    taken: DomainError,
    also: dict | None = None,
) -> Any:
    """Store a new row and audit its creation (its `fields`, and `also`). A unique key another
    writer took meanwhile (the caller checked it first, before the race) is refused with `taken`."""
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as error:
        raise taken from error
    after = snapshot(row, fields) | (also or {})
    await record_event(session, actor=actor, action="create", entity=entity, entity_id=row.id, after=after)
    return row


async def save_changes(
    session: AsyncSession,
    row: Any,
    before: dict,
    after: dict,
    *,
    actor: User,
    entity: str,
    action: str = "update",
    taken: DomainError | None = None,
) -> bool:
    """Store an edited row and audit it (`before` and `after`, its audited snapshots), unless
    nothing changed. A unique key another writer took meanwhile is refused with `taken`."""
    if after == before:
        return False
    row.updated_by_id = actor.id
    try:
        await session.flush()
    except IntegrityError as error:
        if taken is None:
            raise
        raise taken from error
    await record_event(
        session, actor=actor, action=action, entity=entity, entity_id=row.id, before=before, after=after
    )
    return True


async def check_version(
    session: AsyncSession, row: Any, seen_version: int | None, *, noun: str, fields: tuple[str, ...]
) -> None:
    """Raise StaleEdit unless the form was loaded at the row's current version."""
    if seen_version == row.version:
        return
    editor_id = getattr(row, "updated_by_id", None)
    editor = await session.get(User, editor_id) if editor_id else None
    who = f" by {editor.display_name}" if editor else ""
    raise StaleEdit(
        f"This {noun} was changed{who} at {date_time(row.updated_at, seconds=True)} after you opened it.",
        current={**snapshot(row, fields), "version": row.version},
    )
