"""Optimistic concurrency: every edit form carries the row's `version`; a save over a newer
version is refused, naming who changed the row and when, and nothing is overwritten."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit.queries import record_event, snapshot
from portal.clock import date_time
from portal.errors import DomainError, NotFound, StaleEdit
from portal.models import User

M = TypeVar("M")


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


async def get_for_edit(
    session: AsyncSession,
    model: type[M],
    row_id: int,
    seen_version: int | None,
    *,
    noun: str,
    fields: tuple[str, ...],
    gone: str | None = None,
) -> M:
    """The row to edit, locked until the transaction ends: NotFound (saying `gone`) when it was
    deleted meanwhile, StaleEdit when it changed after the form was loaded (`check_version`)."""
    row = await session.get(model, row_id, with_for_update=True)
    if row is None:
        raise NotFound(noun, gone)
    await check_version(session, row, seen_version, noun=noun, fields=fields)
    return row


async def delete_audited(
    session: AsyncSession,
    row: Any,
    *,
    actor: User,
    entity: str,
    fields: tuple[str, ...],
    also: dict | None = None,
) -> None:
    """Delete a row and audit it as it was (its `fields`, and `also`)."""
    row_id = row.id
    before = snapshot(row, fields) | (also or {})
    await session.delete(row)
    await session.flush()
    await record_event(session, actor=actor, action="delete", entity=entity, entity_id=row_id, before=before)
