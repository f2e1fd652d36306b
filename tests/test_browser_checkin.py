"""In headless Chromium: a clerk checks a voter in and voids it with a reason; the voter page shows
the void struck through; a manager accepts a pending provisional ballot on the adjudication screen."""

from __future__ import annotations

import pytest

from tests.browser import PageErrors, shot
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser


def sign_in(page, base, user):
    page.goto(f"{base}/login")
    page.fill("#username", user.username)
    page.fill("#password", TEST_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def no_sideways_scroll(page, name):
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the page itself does not scroll sideways
    page.wait_for_timeout(200)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, name
    shot(page, f"{name}-390")
    page.set_viewport_size({"width": 1280, "height": 900})


def test_void_a_check_in_and_accept_a_provisional_in_chromium(
    live_server, browser, create_election, create_voters, create_user, run
):
    from playwright.sync_api import expect

    from portal.checkin.queries import record_check_in
    from portal.db import transaction

    made = create_election(name="County General 2026", status="open", precincts=1)
    john, _ = create_voters([("Smith", "John"), ("Smith", "Jane")], precinct=made.precincts[0])
    [ann] = create_voters([("Lee", "Ann")], precinct=made.precincts[0], status="inactive")
    clerk = create_user("clerk", display_name="Casey Clerk")
    manager = create_user("manager", display_name="Morgan Manager")

    async def provisional():
        async with transaction() as db:
            await record_check_in(
                db, actor=clerk, election_id=made.election.id, voter_id=ann, method="provisional"
            )

    run(provisional())

    base = live_server.url
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = PageErrors(page)
    sign_in(page, base, clerk)
    page.goto(f"{base}/check-in?election={made.election.id}")
    page.locator("#checkin-q").press_sequentially("smith", delay=30)
    row = page.locator(f"#checkin-voter-{john}")
    row.locator("text=Issue ballot").click()
    expect(row.locator(".badge", has_text="Checked in")).to_be_visible()
    expect(page.locator("#turnout")).to_contain_text("2 of 2")  # John, and Ann's provisional ballot
    shot(page, "checkin-issued")

    row.locator("text=Void…").click()
    modal = page.locator("#modal")
    expect(modal).to_be_visible()
    expect(modal).to_contain_text("John Smith")
    page.fill("#modal #reason", "Wrong John: same name, <b>other</b> street")
    shot(page, "checkin-void-form")
    page.click("#modal button[type=submit]")
    expect(modal).to_be_hidden()
    expect(page.locator("#turnout")).to_contain_text("1 of 2")
    expect(page.locator(f"#checkin-voter-{john}").locator("text=Issue ballot")).to_be_visible()
    shot(page, "checkin-voided")
    no_sideways_scroll(page, "checkin-desk")

    page.goto(f"{base}/voters/{john}")
    struck = page.locator(".check-in-voided del")
    expect(struck).to_contain_text("County General 2026")
    assert "line-through" in struck.evaluate("e => getComputedStyle(e).textDecorationLine")
    note = page.locator(".check-in-voided .void-note")
    expect(note).to_contain_text("by Casey Clerk")
    expect(note).to_contain_text("Wrong John: same name, <b>other</b> street")  # the markup is just text
    shot(page, "voter-voided-check-in")
    no_sideways_scroll(page, "voter-voided-check-in")

    other = browser.new_page(viewport={"width": 1280, "height": 900})
    manager_errors = PageErrors(other)
    sign_in(other, base, manager)
    other.goto(f"{base}/elections/{made.election.id}")
    other.click("text=Provisional ballots")
    expect(other.locator("h1")).to_have_text("Provisional ballots")
    expect(other.locator("#provisional-list")).to_contain_text("1 pending")
    shot(other, "provisionals-pending")
    no_sideways_scroll(other, "provisionals-pending")
    other.check("#provisional-list input[name=check_in]")
    other.select_option("#decision", "accept")
    other.select_option("#reason", "Registration confirmed")
    other.click("text=Record the decision")
    expect(other.locator("#provisional-list")).to_contain_text("No provisional ballot is pending")
    expect(other.locator("#toasts")).to_contain_text("1 provisional ballot accepted (Registration confirmed)")
    other.select_option("#filter-status", "accepted")
    expect(other.locator("#provisional-list")).to_contain_text("Lee, Ann")
    expect(other.locator("#provisional-list")).to_contain_text("Registration confirmed · Morgan Manager")
    shot(other, "provisionals-accepted")
    no_sideways_scroll(other, "provisionals-accepted")
    assert errors.messages == [] and manager_errors.messages == []
