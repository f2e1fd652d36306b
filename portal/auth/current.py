from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from flask_login import current_user

from portal.db import transaction
from portal.models import User

T = TypeVar("T")


def current_actor() -> User:
    """The signed-in user as a model instance (for the data layer and the audit trail)."""
    return current_user._get_current_object()


async def perform(change: Callable[..., Awaitable[T]], /, **arguments: Any) -> T:
    """One data-layer change made by the signed-in user, in its own transaction (committed when
    this returns): `change(session, actor=<the user>, **arguments)`."""
    async with transaction() as db:
        return await change(db, actor=current_actor(), **arguments)
