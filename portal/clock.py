"""The office's clock: times are stored in UTC and shown, printed and exported in the office's time
zone (`time_zone` in config.toml, an IANA name such as "America/New_York").

Every time a person reads goes through here, so a screen, a flash message and a CSV can never
disagree about what o'clock it was. Shown times carry the zone's abbreviation ("01:30 EDT" and
"01:30 EST" are an hour apart on the night the clocks go back); exported times are ISO 8601 with
the offset. "Today" in a date rule is the office's day, not UTC's.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask, current_app

EXTENSION = "portal.time_zone"


def zone_named(name: object) -> ZoneInfo:
    """The zone of an IANA name; a name that does not exist is refused, saying which setting."""
    if not isinstance(name, str):
        problem = "it is not a text"
    elif not name.strip():
        problem = "it is empty"
    else:
        try:
            return ZoneInfo(name.strip())
        except (ZoneInfoNotFoundError, ValueError):  # (ValueError: a path such as "../x")
            problem = "there is no IANA time zone of that name"
    raise ValueError(
        f"time_zone = {name!r} (config.toml or PORTAL_TIME_ZONE) is not a time zone: {problem}. "
        'Give an IANA name such as "America/New_York" or "Europe/Paris".'
    )


def init_app(app: Flask) -> None:
    """Read `time_zone` at start-up: a bad name stops the application before it serves anything."""
    app.extensions[EXTENSION] = zone_named(app.config.get("TIME_ZONE", "UTC"))


def office_zone() -> ZoneInfo:
    """The office's time zone (needs the application context)."""
    return current_app.extensions[EXTENSION]


def local(moment: datetime, zone: ZoneInfo | None = None) -> datetime:
    """A stored moment on the office's clock. A naive value is read as UTC (storage is UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone or office_zone())


def utcnow() -> datetime:
    """This instant (one place to read the machine's clock, so a test can set it)."""
    return datetime.now(UTC)


def today(now: datetime | None = None, zone: ZoneInfo | None = None) -> date:
    """The office's date at `now` (default: this instant): near midnight it is not UTC's."""
    return local(now or utcnow(), zone).date()


def day_bounds(day: date, zone: ZoneInfo | None = None) -> tuple[datetime | None, datetime | None]:
    """The office's calendar day as UTC instants [start, end): 23 or 25 hours on a DST change.
    A bound beyond what a datetime holds (around the first and the last day there are) is None."""
    zone = zone or office_zone()
    following = day + timedelta(days=1) if day < date.max else None
    return _midnight(day, zone), _midnight(following, zone) if following else None


def _midnight(day: date, zone: ZoneInfo) -> datetime | None:
    try:
        return datetime.combine(day, time.min, zone).astimezone(UTC)
    except OverflowError:
        return None


def clock_time(moment: datetime, seconds: bool = False) -> str:
    """ "14:05 EST" (or "14:05:09 EST")."""
    return local(moment).strftime("%H:%M:%S %Z" if seconds else "%H:%M %Z")


def date_time(moment: datetime, seconds: bool = False) -> str:
    """ "2026-11-07 09:12 EST" (or with seconds)."""
    return local(moment).strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


def local_date(moment: datetime) -> str:
    """The office's date of a moment, "2026-11-03"."""
    return local(moment).date().isoformat()


def iso(moment: datetime) -> str:
    """For exports: ISO 8601 with the office's offset, "2026-11-03T07:15:00-05:00"."""
    return local(moment).isoformat(timespec="seconds")
