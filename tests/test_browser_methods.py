"""In headless Chromium: a clerk enters election-day and mail returns for one precinct, one method
at a time; an observer's live panel in a second browser shows the total and the split; the canvass
prints by method."""

from __future__ import annotations

import subprocess

import pytest

from tests.browser import PageErrors, first_page_png, shot
from tests.test_browser_returns import signed_in

pytestmark = pytest.mark.browser


def _fill(page, contest, ann, bob, values):
    a, b, over, under, ballots = values
    for field, value in (
        (ann.id, a),
        (bob.id, b),
        ("overvotes", over),
        ("undervotes", under),
        ("ballots_cast", ballots),
    ):
        page.fill(f"#c{contest.id}_{field}", str(value))


def test_returns_by_method_reach_another_browser_with_the_split(
    live_server, browser, create_user, create_election, tmp_path
):
    from playwright.sync_api import expect

    made = create_election(
        status="open",
        precincts=2,
        contests=[("Mayor", 1, ["Ann Able", "Bob Baker"])],
        methods=("election_day", "early", "absentee", "provisional"),
    )
    precinct, (contest,), (ann, bob) = made.precincts[0], made.contests, made.candidates
    base = live_server.url
    watcher = signed_in(browser, base, create_user("observer"))
    watch_errors = PageErrors(watcher)
    watcher.goto(f"{base}/elections/{made.election.id}")
    panel = watcher.locator(f"#tally-contest-{contest.id}")
    expect(panel.locator("[data-live-badge], .tally-row").first).to_be_visible()

    clerk = signed_in(browser, base, create_user("clerk"))
    errors = PageErrors(clerk)
    clerk.goto(f"{base}/elections/{made.election.id}/returns")
    clerk.click(f"#precinct-returns tr:has-text('{precinct.code}') >> text=Enter")
    expect(clerk.locator(".method-tabs .nav-link.active")).to_contain_text("Election Day")
    _fill(clerk, contest, ann, bob, (60, 30, 1, 9, 100))
    expect(clerk.locator(f"#check-{contest.id}")).to_contain_text("✓")
    clerk.click("text=Save the Election Day returns")
    expect(clerk.locator("#toasts")).to_contain_text("Election Day: 1 contest(s) saved")
    expect(panel).to_contain_text("60 · 66.67%", timeout=5000)

    clerk.click(".method-tabs >> text=Absentee/Mail")
    expect(clerk.locator(".method-tabs .nav-link.active")).to_contain_text("Absentee/Mail")
    expect(clerk.locator(".other-methods")).to_contain_text("Election Day 100 ballots, entered")
    _fill(clerk, contest, ann, bob, (8, 2, 0, 0, 10))
    expect(clerk.locator(f"#check-{contest.id}")).to_contain_text("✓")
    shot(clerk, "returns-by-method-entry")
    clerk.click("text=Save the Absentee/Mail returns")
    expect(clerk.locator("#toasts")).to_contain_text("Absentee/Mail: 1 contest(s) saved")

    # The other browser: the total and the split, without a reload.
    expect(panel).to_contain_text("68 · 68.00%", timeout=5000)
    expect(panel.locator(".tally-methods").first).to_contain_text(
        "Election Day 60 · Early 0 · Mail 8 · Provisional 0"
    )
    expect(panel).to_contain_text("110 ballots (Election Day 100, Early 0, Mail 10, Provisional 0)")
    shot(watcher, "live-panel-by-method")

    # At phone width the entry page does not scroll sideways.
    clerk.set_viewport_size({"width": 390, "height": 844})
    clerk.reload()
    assert clerk.evaluate("document.documentElement.scrollWidth") <= 390
    shot(clerk, "returns-by-method-390")

    # The precinct list shows each method's state; the canvass prints by method.
    clerk.set_viewport_size({"width": 1280, "height": 1000})
    clerk.goto(f"{base}/elections/{made.election.id}/returns")
    row = clerk.locator(f"#precinct-returns tr:has-text('{precinct.code}')")
    expect(row).to_contain_text("entered")
    expect(row).to_contain_text("not reported")
    shot(clerk, "returns-precincts-by-method")
    clerk.set_viewport_size({"width": 390, "height": 844})
    clerk.reload()
    assert clerk.evaluate("document.documentElement.scrollWidth") <= 390  # the table scrolls in itself
    clerk.set_viewport_size({"width": 1280, "height": 1000})
    clerk.goto(f"{base}/elections/{made.election.id}/reports/canvass")
    expect(clerk.locator(".canvass-by-method")).to_contain_text("Subtotal")
    shot(clerk, "canvass-by-method")
    clerk.set_viewport_size({"width": 390, "height": 844})
    for report in ("canvass", "reconciliation", "summary", "turnout"):
        clerk.goto(f"{base}/elections/{made.election.id}/reports/{report}")
        assert clerk.evaluate("document.documentElement.scrollWidth") <= 390, report  # tables scroll in place
    shot(clerk, "turnout-report-390")
    clerk.set_viewport_size({"width": 1280, "height": 1000})
    clerk.goto(f"{base}/elections/{made.election.id}/reports/canvass")
    clerk.emulate_media(media="print")
    for paper in ("A4", "Letter"):
        pdf = tmp_path / f"canvass-{paper}.pdf"
        clerk.pdf(path=str(pdf), format=paper)
        text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True).stdout
        assert "Absentee/Mail" in text and "Subtotal" in text and "All methods" in text
        first_page_png(pdf, f"canvass-by-method-{paper}")
    assert errors.messages == [] and watch_errors.messages == []
