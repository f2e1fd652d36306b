"""In headless Chromium: enter returns (checked as you type), verify them blind, see the tally."""

from __future__ import annotations

import pytest

from tests.browser import PageErrors, shot
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser


def signed_in(browser, base, user):
    page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    page.goto(f"{base}/login")
    page.fill("#username", user.username)
    page.fill("#password", TEST_PASSWORD)
    page.click("text=Sign in >> nth=-1")
    page.wait_for_url(f"{base}/")
    return page


def test_enter_verify_and_see_the_tally(live_server, browser, create_user, create_election, create_party):
    from playwright.sync_api import expect

    made = create_election(status="open", precincts=1, contests=[("Mayor", 1, ["Ann Able", "Bob Baker"])])
    precinct, (contest,), (ann, bob) = made.precincts[0], made.contests, made.candidates
    clerk, checker = create_user("clerk"), create_user("clerk")
    page = signed_in(browser, live_server.url, clerk)
    errors = PageErrors(page)
    page.goto(f"{live_server.url}/elections/{made.election.id}/returns/{precinct.id}")
    for field, value in (
        (ann.id, "60"),
        (bob.id, "35"),
        ("overvotes", "3"),
        ("undervotes", "1"),
        ("ballots_cast", "100"),
    ):
        page.fill(f"#c{contest.id}_{field}", value)
    expect(page.locator(f"#check-{contest.id}")).to_contain_text("≠")
    shot(page, "returns-entry-mismatch")
    page.fill(f"#c{contest.id}_undervotes", "2")
    expect(page.locator(f"#check-{contest.id}")).to_contain_text("✓")
    shot(page, "returns-entry")
    page.click("text=Save the returns")
    expect(page.locator("#toasts")).to_contain_text("1 contest(s) saved for verification")

    second = signed_in(browser, live_server.url, checker)
    second.goto(f"{live_server.url}/elections/{made.election.id}/returns/{precinct.id}/verify")
    second.fill(f"#c{contest.id}_{ann.id}", "60")
    second.fill(f"#c{contest.id}_{bob.id}", "36")
    second.fill(f"#c{contest.id}_overvotes", "3")
    second.fill(f"#c{contest.id}_undervotes", "1")
    second.fill(f"#c{contest.id}_ballots_cast", "100")
    second.click("text=Compare and verify")
    expect(second.locator(".mismatch")).to_contain_text("Bob Baker")
    shot(second, "returns-verify-mismatch")
    second.fill(f"#c{contest.id}_{bob.id}", "35")
    second.fill(f"#c{contest.id}_undervotes", "2")
    second.click("text=Compare and verify")
    expect(second.locator("#precinct-returns")).to_contain_text("verified")
    second.goto(f"{live_server.url}/elections/{made.election.id}")
    panel = second.locator(f"#tally-contest-{contest.id}")
    expect(panel).to_contain_text("Official")
    expect(panel).to_contain_text("60 · 63.2%")
    shot(second, "election-tally")
    assert errors.messages == []


def test_a_return_entered_in_one_browser_appears_in_another(
    live_server, browser, create_user, create_election
):
    from playwright.sync_api import expect

    made = create_election(status="open", precincts=2, contests=[("Mayor", 1, ["Ann Able", "Bob Baker"])])
    precinct, (contest,), (ann, bob) = made.precincts[0], made.contests, made.candidates
    watcher = signed_in(browser, live_server.url, create_user("observer"))
    errors = PageErrors(watcher)
    watcher.goto(f"{live_server.url}/elections/{made.election.id}")
    panel = watcher.locator(f"#tally-contest-{contest.id}")
    expect(panel).to_contain_text("0 · —")  # no votes yet: a share of nothing
    expect(watcher.locator("#reporting-figure")).to_contain_text("0 of 2")
    shot(watcher, "live-before")

    clerk = signed_in(browser, live_server.url, create_user("clerk"))
    clerk.goto(f"{live_server.url}/elections/{made.election.id}/returns/{precinct.id}")
    for field, value in (
        (ann.id, "64"),
        (bob.id, "36"),
        ("overvotes", "0"),
        ("undervotes", "0"),
        ("ballots_cast", "100"),
    ):
        clerk.fill(f"#c{contest.id}_{field}", value)
    clerk.click("text=Save the returns")
    expect(clerk.locator("#toasts")).to_contain_text("saved for verification")

    expect(panel).to_contain_text("64 · 64.0%", timeout=5000)  # no reload: pushed over SSE
    expect(watcher.locator("#reporting-figure")).to_contain_text("1 of 2")
    shot(watcher, "live-after")
    assert errors.messages == []
