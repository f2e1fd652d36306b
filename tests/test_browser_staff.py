"""What staff see, in Chromium at a desk (1366 px) and on a phone (390 px): the dashboard, the
incidents page, the voter list and the audit log, on the demo's election night (20,000 voters)."""

from __future__ import annotations

import pytest

from tests.browser import PageErrors, shot, sign_in

pytestmark = pytest.mark.browser
WIDTHS = (1366, 390)


@pytest.fixture
def demo(run):
    """The demo's data, election night included: an open election with check-ins, returns in every
    state and open incidents."""
    from sqlalchemy import select

    from portal.db import transaction
    from portal.demo.seed import load_demo
    from portal.models import Election

    async def go():
        async with transaction() as db:
            result = await load_demo(db, voters=20_000, precincts=40, seed=2026)
            opened = await db.scalar(select(Election.id).where(Election.status == "open").limit(1))
            return result, opened

    return run(go())


def _no_sideways_scroll(page, width: int) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{page.url} is {scroll} px wide at {width} px"


def test_staff_pages_at_a_desk_and_on_a_phone(live_server, browser, demo):
    from playwright.sync_api import expect

    result, election_id = demo
    for width in WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        errors = PageErrors(page)
        sign_in(page, live_server.url, "admin", result.password)

        page.goto(f"{live_server.url}/")
        section = page.locator(f"[aria-labelledby='live-{election_id}']")
        expect(section.locator("[data-live-badge]")).to_have_text("live")
        expect(section.locator("[data-live-changed]")).to_contain_text(" since ", timeout=5000)
        expect(section.locator(".turnout-panel")).to_contain_text("active voters in the election")
        incidents = section.locator("[sse-swap='incident-summary']")
        expect(incidents).to_contain_text("open")
        expect(incidents.locator("a", has_text="All incidents")).to_have_attribute(
            "href", f"/elections/{election_id}/incidents"
        )
        shot(page, f"staff-dashboard-{width}")
        _no_sideways_scroll(page, width)

        page.goto(f"{live_server.url}/elections/{election_id}")  # the same panels on the election page
        expect(page.locator("#live-results [data-live-changed]")).to_contain_text(" since ", timeout=5000)
        shot(page, f"staff-election-{width}")
        _no_sideways_scroll(page, width)

        page.goto(f"{live_server.url}/elections/{election_id}/incidents")
        expect(page.locator("[data-live-badge]")).to_have_text("live")
        if width == WIDTHS[0]:  # resolve one (CSRF on, through htmx): the audit log shows the change
            open_before = page.locator("#incident-resolve li").count()
            page.locator("#incident-resolve button").first.click()
            expect(page.locator("#toasts")).to_contain_text("Incident resolved.")
            expect(page.locator("#incident-resolve li")).to_have_count(open_before - 1)
        shot(page, f"staff-incidents-{width}")
        _no_sideways_scroll(page, width)

        page.goto(f"{live_server.url}/voters")
        expect(page.locator("#voter-count")).to_have_text("20,000 voters")
        shot(page, f"staff-voters-{width}")
        _no_sideways_scroll(page, width)

        page.goto(f"{live_server.url}/audit")
        expect(page.locator("#audit-list .audit-changes").first).to_be_visible()
        expect(page.locator("#audit-list")).to_contain_text("status: open → resolved")
        assert page.locator("#audit-list .audit-changes").first.bounding_box()["x"] < width
        shot(page, f"staff-audit-{width}")
        _no_sideways_scroll(page, width)
        assert errors.messages == []
        context.close()


def test_the_resolve_list_and_the_last_change_move_without_a_reload(
    live_server, browser, create_election, create_user, client_as
):
    """A manager's incidents page: a clerk's report appears in the resolve list by itself, the badge
    says "live · last change HH:MM:SS"; Resolve (CSRF on, through htmx) empties the list again."""
    import re

    from playwright.sync_api import expect

    made = create_election(status="open", precincts=1)
    manager, clerk = create_user("manager"), client_as("clerk")
    base = f"/elections/{made.election.id}/incidents"
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    errors = PageErrors(page)
    sign_in(page, live_server.url, manager.username)
    page.goto(live_server.url + base)
    resolve = page.locator("#incident-resolve")
    changed = page.locator("[data-live-changed]")
    expect(resolve).to_have_text("No open incidents.")
    expect(page.locator("[data-live-badge]")).to_have_text("live")
    expect(changed).to_have_text(re.compile(r"^· no change since \d\d:\d\d:\d\d E[SD]T$"), timeout=5000)
    page.evaluate("window.notReloaded = true")

    clerk.post(base, data={"precinct_id": "0", "body": "Ramp blocked by a van"})
    expect(resolve).to_contain_text("Ramp blocked by a van", timeout=5000)
    expect(resolve).to_contain_text("1 open")
    expect(changed).to_have_text(re.compile(r"^· last change \d\d:\d\d:\d\d E[SD]T$"))
    assert page.evaluate("window.notReloaded") is True
    shot(page, "staff-incidents-live")

    resolve.get_by_role("button", name=re.compile("Resolve incident")).click()
    expect(page.locator("#toasts")).to_contain_text("Incident resolved.")
    expect(resolve).to_have_text("No open incidents.")
    expect(page.locator("#incident-feed")).to_contain_text("resolved")
    assert errors.messages == []
