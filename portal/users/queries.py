"""Staff accounts."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit.queries import record_event, snapshot
from portal.auth.queries import clear_two_factor, end_sessions, hash_password
from portal.editing import get_for_edit, insert_audited
from portal.errors import Conflict, FieldError, NotFound
from portal.models import User

AUDITED = ("username", "display_name", "role", "active")


class LastAdmin(Conflict):
    pass


async def list_users(session: AsyncSession) -> list[User]:
    return list((await session.scalars(select(User).order_by(User.active.desc(), User.username))).all())


async def get_user(session: AsyncSession, user_id: int) -> User:
    """The account, or NotFound."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("account")
    return user


def username_taken(username: str) -> FieldError:
    return FieldError("username", f"The username {username} is taken.")


async def create_user(
    session: AsyncSession, *, actor: User | None, username: str, display_name: str, role: str, password: str
) -> User:
    if await session.scalar(select(User.id).where(User.username == username)):
        raise username_taken(username)
    user = User(
        username=username, display_name=display_name, role=role, password_hash=await hash_password(password)
    )
    taken = username_taken(username)
    return await insert_audited(session, user, actor=actor, entity="user", fields=AUDITED, taken=taken)


async def _other_active_admins(session: AsyncSession, user_id: int) -> int:
    return (
        await session.scalar(
            select(func.count()).where(User.role == "admin", User.active.is_(True), User.id != user_id)
        )
        or 0
    )


async def update_user(
    session: AsyncSession,
    *,
    actor: User,
    user_id: int,
    seen_version: int | None,
    display_name: str,
    role: str,
    active: bool,
    new_password: str | None,
    keep_token: str | None = None,
) -> User:
    """`keep_token`: the editor's own session, kept when admins change their own password."""
    gone = "This account no longer exists."
    user = await get_for_edit(session, User, user_id, seen_version, noun="account", fields=AUDITED, gone=gone)
    demoted = (role != "admin" or not active) and user.role == "admin" and user.active
    if demoted and not await _other_active_admins(session, user_id):
        raise LastAdmin("At least one active admin must remain.")
    before = snapshot(user, AUDITED)
    user.display_name, user.role, user.active = display_name, role, active
    user.updated_by_id = actor.id
    after = snapshot(user, AUDITED)
    if new_password:
        user.password_hash = await hash_password(new_password)
        after["password"] = "changed"  # noqa: S105 - a marker, not a password
    if after == before:
        return user
    await session.flush()
    if new_password or not active:
        # A new password or a deactivation ends every session of the account at once.
        keep = keep_token if active and actor.id == user.id else None
        after["sessions_ended"] = await end_sessions(session, user.id, keep_token=keep)
    await record_event(
        session, actor=actor, action="update", entity="user", entity_id=user.id, before=before, after=after
    )
    return user


async def reset_two_factor(session: AsyncSession, *, actor: User, user_id: int) -> User:
    """An admin's reset of another account's second factor (a lost phone): the secret and the
    recovery codes go, and so do the account's sessions; it signs in with its password and sets
    two-factor up again."""
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFound("account")
    had = user.totp_enabled_at is not None
    await clear_two_factor(session, user_id)
    ended = await end_sessions(session, user_id)
    await record_event(
        session,
        actor=actor,
        action="two_factor_reset",
        entity="user",
        entity_id=user_id,
        before={"two_factor": "on" if had else "off"},
        after={"two_factor": "off", "sessions_ended": ended},
    )
    return user
