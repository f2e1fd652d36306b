"""How figures read: counts and percentages are written here, and only here, for every page, print,
message and export, so the dashboard, the summary and the certification can never disagree about
how 47.83% is written. (Times have their own module: portal/clock.py, filters |time |datetime
|localdate |isotime.)

People read a count with thousands separators ("20,000") and a percentage with two decimals and a
sign ("47.83%": the precision certified reports have always printed vote shares with, so a reprint
of one shows the very figures of the first print); a share of nothing is "—", never "0.00%".
Exports take the same share as a plain figure ("47.83"), in the form each column has always had: a
certified election's CSV is the same bytes forever, so its columns keep their number of decimals
and a share of nothing stays 0.
"""

from __future__ import annotations

from flask import Flask

DASH = "—"  # a figure that does not exist: no denominator, no returns yet


def number(value: int | None, signed: bool = False) -> str:
    """A count for people: "20,000"; "+1,234" with `signed` (a difference); "—" for no figure."""
    if value is None:
        return DASH
    return f"{value:+,}" if signed else f"{value:,}"


def share(part: int | None, whole: int | None) -> float | None:
    """`part` as a percentage of `whole`; None when there is nothing to divide by."""
    if part is None or not whole:
        return None
    return 100.0 * part / whole


def percent(part: int | None, whole: int | None, places: int = 2) -> str:
    """A share for people: "47.83%" (two decimals); "—" when the whole is 0 or a figure is missing."""
    value = share(part, whole)
    return DASH if value is None else f"{value:.{places}f}%"


def percent_figure(part: int | None, whole: int | None, places: int = 1) -> str:
    """A share for an export: the same value as `percent`, as a plain number ("47.8"), and a zero
    of the same decimals ("0.0") when there is nothing to divide by (what the CSVs have always said)."""
    value = share(part, whole)
    return f"{value or 0.0:.{places}f}"


def init_app(app: Flask) -> None:
    app.add_template_filter(number)  # {{ voters|number }} -> 20,000; |number(signed=True) -> +12
    app.add_template_filter(percent)  # {{ votes|percent(total) }} -> 47.83%, or — when total is 0
