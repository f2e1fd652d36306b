"""Accounts, password checks and sign-in throttling."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from werkzeug.security import check_password_hash, generate_password_hash

from portal.models import LoginThrottle, User

# Compared against when the username is unknown, so both cases take the same time.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


async def hash_password(password: str) -> str:
    # scrypt takes tens of milliseconds of CPU: run it off the event loop.
    method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
    return await asyncio.to_thread(generate_password_hash, password, method)


async def password_matches(user: User | None, password: str) -> bool:
    stored = user.password_hash if user is not None else _DUMMY_HASH
    ok = await asyncio.to_thread(check_password_hash, stored, password)
    return ok and user is not None


def session_fingerprint(user: User) -> str:
    """Changes when the password changes, so other sessions of the account end."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_user_by_username(session: AsyncSession, username: str) -> User | None:
    return await session.scalar(select(User).where(User.username == username.strip().lower()))


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int
    base_seconds: int
    cap_seconds: int

    def lock_for(self, failures: int) -> timedelta | None:
        if failures < self.max_failures:
            return None
        seconds = self.base_seconds * 2 ** min(failures - self.max_failures, 16)
        return timedelta(seconds=min(seconds, self.cap_seconds))


async def seconds_locked(session: AsyncSession, *, user: User | None, address: str, now: datetime) -> int:
    """How long sign-in stays refused for this account or address (0: not locked)."""
    until = [await session.scalar(select(LoginThrottle.locked_until).where(LoginThrottle.address == address))]
    if user is not None:
        until.append(user.locked_until)
    remaining = [(u - now).total_seconds() for u in until if u is not None and u > now]
    return int(max(remaining) + 0.999) if remaining else 0


async def record_failed_login(
    session: AsyncSession, *, user: User | None, address: str, policy: ThrottlePolicy, now: datetime
) -> None:
    row = (
        await session.execute(
            insert(LoginThrottle)
            .values(address=address, failures=1, updated_at=now)
            .on_conflict_do_update(
                index_elements=[LoginThrottle.address],
                set_={"failures": LoginThrottle.failures + 1, "updated_at": now},
            )
            .returning(LoginThrottle.failures)
        )
    ).one()
    lock = policy.lock_for(row.failures)
    if lock:
        await session.execute(
            update(LoginThrottle).where(LoginThrottle.address == address).values(locked_until=now + lock)
        )
    if user is not None:
        # Plain UPDATE: sign-in counters must not bump the row version an admin's edit form holds.
        failures = (
            await session.execute(
                update(User)
                .where(User.id == user.id)
                .values(failed_logins=User.failed_logins + 1)
                .returning(User.failed_logins)
                .execution_options(synchronize_session=False)
            )
        ).scalar_one()
        lock = policy.lock_for(failures)
        if lock:
            await session.execute(
                update(User)
                .where(User.id == user.id)
                .values(locked_until=now + lock)
                .execution_options(synchronize_session=False)
            )


async def record_successful_login(session: AsyncSession, *, user: User, address: str, now: datetime) -> None:
    await session.execute(delete(LoginThrottle).where(LoginThrottle.address == address))
    await session.execute(
        update(User)
        .where(User.id == user.id)
        .values(failed_logins=0, locked_until=None, last_login_at=now)
        .execution_options(synchronize_session=False)
    )


def utcnow() -> datetime:
    return datetime.now(UTC)
