"""Accounts, password checks and sign-in throttling."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from werkzeug.security import check_password_hash, generate_password_hash

from portal.models import LoginThrottle, RecoveryCode, User, UserSession


@functools.cache
def _dummy_hash() -> str:
    """Compared against when the username is unknown, so both cases take the same time. (Made on
    first use: scrypt's 90 ms would otherwise open every process, each CLI command included.)"""
    return generate_password_hash("not-a-real-password")


async def hash_password(password: str) -> str:
    # scrypt takes tens of milliseconds of CPU: run it off the event loop.
    method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
    return await asyncio.to_thread(generate_password_hash, password, method)


async def password_matches(user: User | None, password: str) -> bool:
    stored = user.password_hash if user is not None else _dummy_hash()
    ok = await asyncio.to_thread(check_password_hash, stored, password)
    return ok and user is not None


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


# Server-side sessions -------------------------------------------------------------------------------

SESSION_KEY = "_sid"  # in the signed cookie: a random token whose SHA-256 is a user_session row
TOUCH_EVERY = timedelta(seconds=60)  # "last seen" is written at most once a minute per session


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def start_session(session: AsyncSession, *, user: User, address: str, user_agent: str) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        UserSession(
            user_id=user.id, token_hash=digest(token), address=address[:64], user_agent=user_agent[:200]
        )
    )
    await session.flush()
    return token


async def session_user(
    session: AsyncSession, token: str, *, lifetime: timedelta, now: datetime
) -> tuple[User, UserSession] | None:
    """The account and session a cookie's token stands for, or None: signed out, ended elsewhere,
    expired, or the account deactivated."""
    row = (
        await session.execute(
            select(User, UserSession)
            .join(UserSession, UserSession.user_id == User.id)
            .where(UserSession.token_hash == digest(token))
        )
    ).first()
    if row is None:
        return None
    user, current = row
    if not user.active or current.created_at + lifetime < now:
        return None
    return user, current


async def touch_session(session: AsyncSession, session_id: int, now: datetime) -> None:
    await session.execute(update(UserSession).where(UserSession.id == session_id).values(last_seen_at=now))


async def end_session(session: AsyncSession, token: str) -> None:
    await session.execute(delete(UserSession).where(UserSession.token_hash == digest(token)))


async def end_sessions(session: AsyncSession, user_id: int, *, keep_token: str | None = None) -> int:
    """End every session of the account (but `keep_token`'s); how many ended."""
    query = delete(UserSession).where(UserSession.user_id == user_id)
    if keep_token:
        query = query.where(UserSession.token_hash != digest(keep_token))
    return len((await session.execute(query.returning(UserSession.id))).all())


async def list_sessions(session: AsyncSession, user_id: int) -> list[UserSession]:
    return list(
        (
            await session.scalars(
                select(UserSession)
                .where(UserSession.user_id == user_id)
                .order_by(UserSession.last_seen_at.desc())
            )
        ).all()
    )


# Two-factor sign-in (TOTP, RFC 6238, through pyotp) ---------------------------------------------------

TOTP_DRIFT_STEPS = 1  # a code from the 30 s step before or after is accepted too (clock drift)
RECOVERY_CODES = 10


def totp_step_matching(secret: str, code: str, now: datetime) -> int | None:
    """The time step (RFC 6238 counter) whose code `code` is, within the drift allowed; None if none."""
    import pyotp

    code = code.strip().replace(" ", "")
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - TOTP_DRIFT_STEPS, current + TOTP_DRIFT_STEPS + 1):
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


async def accept_totp(session: AsyncSession, user: User, code: str, now: datetime) -> bool:
    """True when `code` is the account's current code and was not used before: its step is then
    recorded, so the same code (or an older one) is refused for the rest of its window."""
    if not user.totp_secret:
        return False
    step = totp_step_matching(user.totp_secret, code, now)
    if step is None:
        return False
    accepted = await session.scalar(
        update(User)
        .where(User.id == user.id, (User.totp_last_step.is_(None)) | (User.totp_last_step < step))
        .values(totp_last_step=step)
        .returning(User.id)
        .execution_options(synchronize_session=False)
    )
    return accepted is not None


def new_recovery_codes() -> list[str]:
    """Ten codes like 7QK4-M2XP-9DWA (60 bits each), shown once."""
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    return [
        "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))
        for _ in range(RECOVERY_CODES)
    ]


def _recovery_digest(code: str) -> str:
    # Letters and digits only: "7QK4-M2XP-9DWA", "7qk4 m2xp 9dwa" and "7QK4M2XP9DWA" are one code.
    return digest(re.sub(r"[^0-9A-Z]", "", code.upper()))


async def replace_recovery_codes(session: AsyncSession, user_id: int) -> list[str]:
    codes = new_recovery_codes()
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    session.add_all(RecoveryCode(user_id=user_id, code_hash=_recovery_digest(c)) for c in codes)
    await session.flush()
    return codes


async def use_recovery_code(session: AsyncSession, user: User, code: str) -> int | None:
    """Spend a recovery code: the number of codes left, or None when it is not one of them."""
    used = await session.scalar(
        delete(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.code_hash == _recovery_digest(code))
        .returning(RecoveryCode.id)
    )
    if used is None:
        return None
    return len((await session.scalars(select(RecoveryCode.id).where(RecoveryCode.user_id == user.id))).all())


async def clear_two_factor(session: AsyncSession, user_id: int) -> None:
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(totp_secret=None, totp_pending_secret=None, totp_enabled_at=None, totp_last_step=None)
        .execution_options(synchronize_session=False)
    )
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))


def two_factor_required(user: User) -> bool:
    return user.role in current_app.config.get("TWO_FACTOR_REQUIRED_ROLES", [])
