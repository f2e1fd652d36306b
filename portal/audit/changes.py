"""An audit event's before and after, read as the fields that changed ("code: 1-A → 1-B")."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MISSING = object()


@dataclass(frozen=True)
class Change:
    field: str  # dotted for nested objects ("figures.ballots_cast"); "" for a value that is no object
    old: str  # "" when the field was added
    new: str  # "" when the field was removed
    added: bool = False
    removed: bool = False


def shown(value: Any) -> str:
    """A stored value as a person reads it: text as it is (an empty text as ""), anything else as JSON."""
    if isinstance(value, str):
        return value if value else '""'
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def changed_fields(before: Any, after: Any) -> list[Change]:
    """One Change per field that differs between `before` and `after` (either may be None: a
    creation or a deletion), in the order the fields first appear; nested objects by dotted name."""
    changes: list[Change] = []
    _walk("", MISSING if before is None else before, MISSING if after is None else after, changes)
    return changes


def _walk(path: str, old: Any, new: Any, changes: list[Change]) -> None:
    if old == new and old is not MISSING:
        return
    old_is_object, new_is_object = isinstance(old, dict), isinstance(new, dict)
    objects = (old_is_object or old is MISSING) and (new_is_object or new is MISSING)
    if objects and (old_is_object or new_is_object):
        old_fields = old if old_is_object else {}
        new_fields = new if new_is_object else {}
        for key in dict.fromkeys([*old_fields, *new_fields]):
            name = f"{path}.{key}" if path else str(key)
            _walk(name, old_fields.get(key, MISSING), new_fields.get(key, MISSING), changes)
        return
    if old is MISSING and new is MISSING:
        return
    changes.append(
        Change(
            path,
            "" if old is MISSING else shown(old),
            "" if new is MISSING else shown(new),
            added=old is MISSING,
            removed=new is MISSING,
        )
    )
