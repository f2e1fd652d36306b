"""In headless Chromium: build an election with two contests and four candidates, reorder, open it."""

from __future__ import annotations

import pytest

from tests.browser import PageErrors, shot
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser


def test_build_reorder_and_open_an_election(live_server, browser, create_user, create_precinct, create_party):
    from playwright.sync_api import expect

    for n in range(3):
        create_precinct(code=f"20{n}-B", name=f"Ward {n}")
    create_party(name="Democratic Party", abbreviation="DEM", colour="#1f5fbf")
    create_party(name="Republican Party", abbreviation="REP", colour="#c8102e")
    user = create_user("manager", display_name="Morgan Manager")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = PageErrors(page)
    page.goto(f"{live_server.url}/login")
    page.fill("#username", user.username)
    page.fill("#password", TEST_PASSWORD)
    page.click("button[type=submit]")

    page.goto(f"{live_server.url}/elections")
    page.click("text=New election")
    modal = page.locator("#modal")
    expect(modal).to_be_visible()
    page.fill("#modal #name", "County General 2026")
    page.fill("#modal #election_date", "2026-11-03")
    page.select_option("#modal #kind", "general")
    page.click("#modal button[type=submit]")
    expect(page.locator("h1")).to_contain_text("County General 2026")

    def add_contest(title):
        page.click("text=Add contest")
        expect(modal).to_be_visible()
        page.fill("#modal #office_title", title)
        page.click("#modal button[type=submit]")
        expect(modal).to_be_hidden()
        expect(page.locator(".contest-title", has_text=title)).to_be_visible()

    def add_candidate(title, code, name, party):
        card = page.locator("li.contest", has=page.locator(".contest-title", has_text=title))
        card.locator("text=Add candidate").click()
        expect(modal).to_be_visible()
        page.fill("#modal #code", code)
        page.fill("#modal #ballot_name", name)
        page.select_option("#modal #party_id", label=party)
        page.click("#modal button[type=submit]")
        expect(modal).to_be_hidden()
        expect(card.locator(".candidate-name", has_text=name)).to_be_visible()

    add_contest("Mayor")
    add_contest("County Council")
    add_candidate("Mayor", "MAY-1", "Ann Able", "Democratic Party (DEM)")
    add_candidate("Mayor", "MAY-2", "Bob Baker", "Republican Party (REP)")
    add_candidate("County Council", "COU-1", "Cara Cole", "Democratic Party (DEM)")
    add_candidate("County Council", "COU-2", "Dan Diaz", "Republican Party (REP)")

    page.click("button[aria-label='Move County Council up']")
    expect(page.locator(".contest-title").first).to_have_text("County Council")
    page.click("button[aria-label='Move Ann Able down']")
    mayor = page.locator("li.contest", has=page.locator(".contest-title", has_text="Mayor"))
    expect(mayor.locator(".candidate-name").first).to_have_text("Bob Baker")
    shot(page, "election-detail-draft")

    page.click("text=Open the election")
    expect(modal).to_be_visible()
    expect(modal).to_contain_text("can no longer change")
    shot(page, "election-open-confirm")
    page.click("#modal button[type=submit]")
    expect(modal).to_be_hidden()
    expect(page.locator("h1 .badge")).to_have_text("open")
    expect(page.locator("text=Add contest")).to_have_count(0)
    shot(page, "election-detail-open")

    page.goto(f"{live_server.url}/elections")
    expect(page.locator("#election-list")).to_contain_text("County General 2026")
    shot(page, "elections")
    assert errors.messages == []
