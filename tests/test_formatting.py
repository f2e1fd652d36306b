"""One way to write a figure (portal/formatting.py): counts with thousands separators, shares with
one decimal and a sign, "—" where there is nothing to divide by; exports the same share as a plain
number; the Jinja filters are the same functions."""

from __future__ import annotations

import pytest

from portal.formatting import DASH, number, percent, percent_figure, share


@pytest.mark.parametrize(
    ("value", "written"),
    [(0, "0"), (7, "7"), (999, "999"), (1000, "1,000"), (20_000, "20,000"), (1_234_567_890, "1,234,567,890")],
)
def test_counts_have_thousands_separators(value, written):
    assert number(value) == written


def test_a_missing_count_is_a_dash_and_a_difference_has_its_sign():
    assert number(None) == DASH == "—"
    assert number(1234, signed=True) == "+1,234"
    assert number(-1234, signed=True) == "-1,234"
    assert number(0, signed=True) == "+0"
    assert number(-5) == "-5"


@pytest.mark.parametrize(
    ("part", "whole", "written"),
    [
        (1, 3, "33.33%"),
        (2, 3, "66.67%"),
        (3, 3, "100.00%"),
        (0, 3, "0.00%"),  # a real zero: nobody voted for it
        (9_559, 20_000, "47.80%"),
        (1, 1_000_000, "0.00%"),
        (2_000_000, 1_000_000, "200.00%"),  # more ballots than voters is shown, not hidden
    ],
)
def test_shares_have_one_decimal_and_a_sign(part, whole, written):
    assert percent(part, whole) == written


@pytest.mark.parametrize(("part", "whole"), [(0, 0), (5, 0), (None, 10), (10, None), (None, None)])
def test_a_share_of_nothing_is_a_dash_never_zero_percent(part, whole):
    assert percent(part, whole) == DASH
    assert share(part, whole) is None


def test_more_decimals_when_asked():
    assert percent(2, 3, places=1) == "66.7%"
    assert percent(1, 8, places=0) == "12%"  # 12.5 rounds half to even, as Python's format does


def test_exports_take_the_same_share_as_a_plain_number():
    """The CSVs' columns keep the form they have always had (a certified election's CSV is the same
    bytes forever): the summary's two decimals, the turnout's one, and a zero for no denominator."""
    assert percent_figure(2, 3, places=2) == "66.67" and percent(2, 3, places=2) == "66.67%"
    assert percent_figure(3, 4) == "75.0"
    assert percent_figure(0, 0, places=2) == "0.00"
    assert percent_figure(None, 4) == "0.0"
    for part, whole in [(1, 3), (1, 7), (5, 8), (123_456, 987_654)]:
        assert percent(part, whole) == percent_figure(part, whole, places=2) + "%"


def test_the_template_filters_are_these_functions(app):
    with app.app_context():
        env = app.jinja_env
        assert env.filters["number"] is number and env.filters["percent"] is percent
        template = env.from_string("{{ 20000|number }} · {{ 9559|percent(20000) }} · {{ 0|percent(0) }}")
        rendered = template.render()
        assert rendered == "20,000 · 47.80% · —"
        # The office's clock keeps its own filters (portal/clock.py): not duplicated here.
        assert {"time", "datetime", "localdate", "isotime"} <= set(env.filters)
