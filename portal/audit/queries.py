"""Append-only, hash-chained audit events.

Each event stores the SHA-256 of its own canonical JSON, which includes the previous event's hash.
A write records its events as it goes (`record_event`); they are appended when its transaction
commits (`append_recorded`, a `before_commit` hook on every session), under a transaction-scoped
advisory lock that serialises appends: the chain never forks, a rolled-back write leaves no event
behind, and the lock is held only for the append and the COMMIT, never while the write goes on
reading (a check-in that answers with the desk's row used to hold every other write of the office
behind it for eight round trips).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Select, or_, select, text
from sqlalchemy import event as orm_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from portal.clock import day_bounds
from portal.models import AuditEvent, User

GENESIS_HASH = "0" * 64
AUDIT_LOCK_KEY = 0x7A11_A0D1  # (written into audit_head_locked() and audit_append(), migrations 0015, 0018)


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


def snapshot(row: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """The audited state of a model row: the named fields, as JSON values."""
    return {name: jsonable(getattr(row, name)) for name in fields}


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_pieces(
    *, username: str, user_id: int | None, action: str, entity: str, entity_id: str, before: Any, after: Any
) -> tuple[str, str, str]:
    """An event's canonical JSON (its keys sorted, no spaces, UTF-8) in three pieces around the two
    values known only once the chain's lock is held: head + time + middle + previous hash + tail.
    (Both are plain ASCII, written as JSON strings without escapes.) The database appends with
    these pieces (audit_append(), migration 0018) and `event_hash` checks with them."""
    head = f'{{"action":{_json(action)},"after":{_json(after)},"at":"'
    middle = f'","before":{_json(before)},"entity":{_json(entity)},"entity_id":{_json(entity_id)},"prev":"'
    tail = f'","user":{_json(username)},"user_id":{_json(user_id)}}}'
    return head, middle, tail


def event_hash(*, created_at: datetime, prev_hash: str, **fields: Any) -> str:
    """The SHA-256 of an event (`fields` as `canonical_pieces` takes them) at `created_at`, after
    the event whose hash is `prev_hash`."""
    head, middle, tail = canonical_pieces(**fields)
    at = created_at.astimezone(UTC).isoformat()
    return hashlib.sha256(f"{head}{at}{middle}{prev_hash}{tail}".encode()).hexdigest()


def stored_event_hash(event: AuditEvent) -> str:
    """The hash a stored event should have, recomputed from what it holds."""
    return event_hash(
        created_at=event.created_at,
        prev_hash=event.prev_hash,
        username=event.username,
        user_id=event.user_id,
        action=event.action,
        entity=event.entity,
        entity_id=event.entity_id,
        before=event.before,
        after=event.after,
    )


RECORDED = "audit_recorded"  # session.info key: the events recorded, waiting for COMMIT


async def record_event(
    session: AsyncSession,
    *,
    actor: User | None,
    action: str,
    entity: str,
    entity_id: Any,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    username: str | None = None,
) -> None:
    """Record one event in the caller's transaction: it is appended to the chain when that
    transaction commits, and never if it rolls back. `actor` None means the system (CLI, seed)."""
    session.info.setdefault(RECORDED, []).append(
        {
            "username": username or (actor.username if actor is not None else "system"),
            "user_id": actor.id if actor is not None else None,
            "action": action,
            "entity": entity,
            "entity_id": str(entity_id),
            "before": jsonable(before) if before is not None else None,
            "after": jsonable(after) if after is not None else None,
        }
    )


@orm_event.listens_for(Session, "before_commit")
def append_recorded(session: Session) -> None:
    """Append the transaction's recorded events to the chain, in the order recorded, as the last
    step before COMMIT. Runs inside the async session's greenlet, so this synchronous call is the
    session's usual asyncpg round trip."""
    recorded = session.info.pop(RECORDED, None)
    if not recorded:
        return
    # One statement takes the chain's lock, reads its head, hashes and inserts the events
    # (audit_append(), migration 0018): under load every round trip made while the lock is held
    # waits for the worker's busy event loop, and every other write of the office waits behind it.
    events = []
    for fields in recorded:
        head, middle, tail = canonical_pieces(**fields)
        events.append({**fields, "head": head, "middle": middle, "tail": tail})
    session.execute(text("SELECT audit_append(CAST(:events AS jsonb))"), {"events": json.dumps(events)})


@orm_event.listens_for(Session, "after_soft_rollback")
def forget_recorded(session: Session, previous_transaction) -> None:
    """A rolled-back write leaves no event behind."""
    session.info.pop(RECORDED, None)


@dataclass(frozen=True)
class Head:
    """The newest event of the chain: a number and a hash that anyone can write down. Deleting
    events after it, or changing any before it, is then provable (`audit verify --head N:HASH`)."""

    event: int
    hash: str

    def __str__(self) -> str:
        return f"{self.event}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Head:
        number, _, digest = text.strip().partition(":")
        if not number.isascii() or not number.isdigit() or len(digest) != 64:
            raise ValueError(f"not a head (event number:64 hex digits): {text!r}")
        return cls(int(number), digest.lower())


async def chain_head(session: AsyncSession) -> Head | None:
    row = (
        await session.execute(select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
    ).first()
    return Head(row.id, row.hash) if row else None


async def head_problem(session: AsyncSession, head: Head) -> str | None:
    """Why a recorded head no longer holds, or None. (That nothing before it changed is what
    verify_chain proves, recomputing every hash from the first event.)"""
    stored = await session.scalar(select(AuditEvent.hash).where(AuditEvent.id == head.event))
    if stored is None:
        newest = await chain_head(session)
        return (
            f"head {head.event} is gone: the chain now ends at event {newest.event if newest else 0}; "
            "events were deleted"
        )
    if stored != head.hash:
        return f"head {head.event}: the event there has another hash; the chain was rewritten"
    return None


@dataclass(frozen=True)
class ChainReport:
    events: int
    broken_at: int | None = None
    reason: str = ""

    @property
    def intact(self) -> bool:
        return self.broken_at is None


async def verify_chain(session: AsyncSession) -> ChainReport:
    """Recompute every hash in order; report the first event that does not match."""
    prev = GENESIS_HASH
    count = 0
    result = await session.stream(
        select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=2000)
    )
    async for event in result.scalars():
        count += 1
        if event.prev_hash != prev:
            return ChainReport(count, event.id, "does not follow the event before it")
        expected = stored_event_hash(event)
        if expected != event.hash:
            return ChainReport(count, event.id, "its content does not match its hash")
        prev = event.hash
    return ChainReport(count)


def _filtered(
    query: Select,
    *,
    q: str,
    user: str,
    entity: str,
    action: str,
    since: date | None = None,
    until: date | None = None,
) -> Select:
    if user:
        query = query.where(AuditEvent.username == user)
    if entity:
        query = query.where(AuditEvent.entity == entity)
    if action:
        query = query.where(AuditEvent.action == action)
    if q:
        query = query.where(
            or_(AuditEvent.entity_id == q, AuditEvent.action.startswith(q), AuditEvent.username == q)
        )
    # Days are the office's days: "from 3 Nov to 3 Nov" is that day on the office's clock.
    # (A bound beyond what a datetime holds, around the first and last day there are, is no bound.)
    start = day_bounds(since)[0] if since else None
    if start is not None:
        query = query.where(AuditEvent.created_at >= start)
    end = day_bounds(until)[1] if until else None
    if end is not None:
        query = query.where(AuditEvent.created_at < end)
    return query


async def search_events(
    session: AsyncSession,
    *,
    q: str = "",
    user: str = "",
    entity: str = "",
    action: str = "",
    since: date | None = None,
    until: date | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[AuditEvent]:
    """Newest first, keyset-paged by id; `since`/`until` are whole days in the office's time zone,
    both included."""
    query = _filtered(
        select(AuditEvent), q=q, user=user, entity=entity, action=action, since=since, until=until
    )
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    return list((await session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit))).all())
