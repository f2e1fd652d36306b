"""What arrives from outside, read by one set of rules: ids in paths, whole numbers in forms and
query strings, free text.

Python's `str.isdigit()` and the regex `\\d` accept Unicode digits: `int("\uff11")` is 1 and `int("²")`
raises, so a path id of a full-width "\uff11" reached election 1, and "²" in a count was a 500. Here only
ASCII digits count, and numbers are bounded by the database column they are compared with.
"""

from __future__ import annotations

import re

from werkzeug.routing import BaseConverter, ValidationError

ASCII_DIGITS = re.compile(r"[0-9]+")
INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1


class DatabaseId(BaseConverter):
    """`<int:...>` in every route: a row id, ASCII digits, 1 .. 2^31-1. Anything else is not a route
    (404) rather than a lookup the database cannot make."""

    regex = r"[0-9]{1,20}"
    weight = 50
    part_isolating = True
    maximum = INT4_MAX

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= self.maximum:
            raise ValidationError()
        return number

    def to_url(self, value) -> str:
        return str(int(value))


class BigDatabaseId(DatabaseId):
    """`<bigid:...>`: a BIGINT row id (voters), 1 .. 2^63-1."""

    maximum = INT8_MAX


def whole_number(raw, *, minimum: int = 0, maximum: int = INT8_MAX) -> int | None:
    """`raw` as a whole number when it is ASCII digits (an optional leading minus) within bounds,
    else None."""
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    negative = text.startswith("-")
    digits = text[1:] if negative else text
    if not ASCII_DIGITS.fullmatch(digits) or len(digits) > 19:
        return None
    number = -int(digits) if negative else int(digits)
    return number if minimum <= number <= maximum else None


def arg_int(args, name: str, default: int | None = None, *, minimum: int = 1, maximum: int = INT8_MAX):
    """A query-string number (a page, an id): ASCII digits within bounds, else `default`."""
    number = whole_number(args.get(name), minimum=minimum, maximum=maximum)
    return default if number is None else number


def has_nul(value) -> bool:
    return isinstance(value, str) and "\x00" in value


def init_app(app) -> None:
    app.url_map.converters["int"] = DatabaseId
    app.url_map.converters["bigid"] = BigDatabaseId
