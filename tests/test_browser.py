"""The whole flow in headless Chromium: sign in, search, create a precinct in the modal."""

from __future__ import annotations

import pytest

from tests.browser import PageErrors, shot
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser


def test_sign_in_create_a_precinct_and_search(live_server, browser, create_user, create_precinct):
    from playwright.sync_api import expect

    for n, name in enumerate(["Maple North", "Oak South", "Cedar East"]):
        create_precinct(code=f"10{n}-A", name=name, polling_place="Lincoln Elementary School")
    user = create_user("manager", display_name="Morgan Manager")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors = PageErrors(page)

    page.goto(f"{live_server.url}/precincts")
    expect(page).to_have_url(f"{live_server.url}/login?next=/precincts")
    shot(page, "login")
    page.fill("#username", user.username)
    page.fill("#password", TEST_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Precincts")
    expect(page.locator(".toast")).to_contain_text("Signed in as Morgan Manager")
    shot(page, "precincts")

    # Create in the modal: empty first (inline errors), then valid.
    page.click("text=New precinct")
    modal = page.locator("#modal")
    expect(modal).to_be_visible()
    expect(modal.locator("h2")).to_have_text("New precinct")
    page.click("#modal button[type=submit]")
    expect(modal.locator(".invalid-feedback").first).to_have_text("Enter the precinct code.")
    shot(page, "precinct-modal-errors")
    page.fill("#modal #code", "111-c")
    page.fill("#modal #name", "Riverside <b>West</b>")
    page.fill("#modal #polling_place", "Fire Station No. 3")
    shot(page, "precinct-modal")
    page.click("#modal button[type=submit]")
    expect(modal).to_be_hidden()
    expect(page.locator("#toasts")).to_contain_text("Precinct 111-C created.")
    expect(page.locator("#precinct-list")).to_contain_text("Riverside <b>West</b>")  # text, not markup

    # Active search narrows the list as you type, and the URL follows.
    page.fill("#precinct-q", "oak")
    expect(page.locator("#precinct-list tbody tr")).to_have_count(1)
    expect(page.locator("#precinct-list")).to_contain_text("Oak South")
    expect(page).to_have_url(f"{live_server.url}/precincts?q=oak&sort=code")
    shot(page, "precincts-search")

    # Sign out is a POST form.
    page.click("text=Sign out")
    expect(page.locator("h1")).to_have_text("Sign in")
    assert errors.messages == []


def test_stale_edit_in_two_browsers(live_server, browser, create_user, create_precinct):
    from playwright.sync_api import expect

    precinct = create_precinct(code="7-G", name="Original")
    pages = []
    for role in ("manager", "admin"):
        user = create_user(role)
        page = browser.new_context().new_page()
        page.goto(f"{live_server.url}/login")
        page.fill("#username", user.username)
        page.fill("#password", TEST_PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{live_server.url}/precincts")
        page.click(f"a[href='/precincts/{precinct.id}/edit']")
        expect(page.locator("#modal")).to_be_visible()
        pages.append(page)
    first, second = pages
    first.fill("#modal #name", "First save")
    first.click("#modal button[type=submit]")
    expect(first.locator("#modal")).to_be_hidden()
    second.fill("#modal #name", "Second save")
    second.click("#modal button[type=submit]")
    expect(second.locator("#modal .alert-warning")).to_contain_text("Not saved.")
    expect(second.locator("#modal .alert-warning")).to_contain_text("First save")
    shot(second, "precinct-stale-edit")


def test_the_audit_log_on_the_offices_clock(live_server, browser, create_user, run):
    """The night the clocks go back in New York: two events at 01:30, told apart by EDT and EST,
    and the day picked in the date filter is the office's day (25 hours long)."""
    from playwright.sync_api import expect

    from tests.browser import sign_in
    from tests.test_clock import add_events, at

    add_events(
        run,
        at("2026-11-01 03:59"),  # 23:59 EDT on 31 October: not that day
        at("2026-11-01 05:30"),  # 01:30 EDT
        at("2026-11-01 06:30"),  # 01:30 EST
        at("2026-11-02 04:59"),  # 23:59 EST on 1 November
    )
    user = create_user("admin")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors = PageErrors(page)
    sign_in(page, live_server.url, user.username)
    page.goto(f"{live_server.url}/audit")
    page.fill("#audit-entity", "clock")
    page.fill("#audit-since", "2026-11-01")
    page.fill("#audit-until", "2026-11-01")
    rows = page.locator("#audit-list tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.locator("td:nth-child(2)")).to_have_text(
        ["2026-11-01 23:59:00 EST", "2026-11-01 01:30:00 EST", "2026-11-01 01:30:00 EDT"]
    )
    expect(page.locator("#audit-list thead")).to_contain_text("Time")
    shot(page, "audit-office-clock")
    assert errors.messages == []
