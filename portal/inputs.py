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


# A person's name: no markup, no control character, and no leading =, +, - or @ (a spreadsheet
# would read it as a formula). One rule for the voter form, the web and CLI import (in SQL: the same
# pattern, which PostgreSQL's regular expressions read alike; its text cannot hold NUL at all).
NAME_FORBIDDEN = r"[<>\x00-\x1f\x7f]|^[=+@-]"
NAME_FORBIDDEN_SQL = NAME_FORBIDDEN.replace("\\x00", "\\x01")
NAME_RULE = (
    "No < or >, no control characters, and no =, +, - or @ at the start (no HTML or spreadsheet formulas)."
)


def name_problem(value: str | None) -> str | None:
    """Why `value` is not acceptable as a name, or None."""
    if value and re.search(NAME_FORBIDDEN, value):
        return NAME_RULE
    return None


def has_nul(value) -> bool:
    return isinstance(value, str) and "\x00" in value


def init_app(app) -> None:
    app.url_map.converters["int"] = DatabaseId
    app.url_map.converters["bigid"] = BigDatabaseId
