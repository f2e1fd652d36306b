"""In headless Chromium: enter returns (checked as you type), verify them blind, see the tally."""

from __future__ import annotations

import pytest

from tests.browser import PageErrors, shot
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser


def assert_accessible_at_both_widths(page, name: str) -> None:
    """axe finds nothing serious or critical, at 1280 px and at 390 px, where nothing scrolls sideways."""
    from tests.test_browser_a11y import PHONE, at_width, axe_violations, page_width

    for width in (1280, PHONE):
        at_width(page, width)
        found = [(v["id"], v["impact"]) for v in axe_violations(page)]  # (serious and critical only)
        assert found == [], (name, width, found)
        if width == PHONE:
            assert page_width(page) <= PHONE, (name, page_width(page))
            shot(page, f"{name}-390")
    at_width(page, 1280)


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
    expect(page.locator("#toasts")).to_contain_text("no Election Day voter has checked in")
    # Toasts hide by themselves after a few seconds: judge where their container sits, under the bar.
    top = page.evaluate("document.getElementById('toasts').getBoundingClientRect().top")
    sign_out = page.locator("text=Sign out").bounding_box()
    assert top >= sign_out["y"] + sign_out["height"]  # no toast ever covers "Sign out"

    second = signed_in(browser, live_server.url, checker)
    second.goto(f"{live_server.url}/elections/{made.election.id}/returns/{precinct.id}/verify")
    second.fill(f"#c{contest.id}_{ann.id}", "60")
    second.fill(f"#c{contest.id}_{bob.id}", "36")
    second.fill(f"#c{contest.id}_overvotes", "3")
    second.fill(f"#c{contest.id}_undervotes", "1")
    second.fill(f"#c{contest.id}_ballots_cast", "100")
    second.click("text=Compare and verify")
    # Told which fields differ, never the entered figures: those fields are asked again, empty.
    expect(second.locator("#rekey-outcome")).to_contain_text("Mayor: the fields marked below differ")
    expect(second.locator(".rekey-asked")).to_have_count(2)
    assert (
        second.input_value(f"#c{contest.id}_{bob.id}") == ""
        and second.input_value(f"#c{contest.id}_undervotes") == ""
    )
    assert second.locator(f"#c{contest.id}_{ann.id}").count() == 0
    assert "35" not in second.locator(f"#verify-{contest.id}").inner_text()
    expect(second.locator("text=Confirm the figures")).to_have_count(0)
    shot(second, "returns-verify-rekey-differs")
    assert_accessible_at_both_widths(second, "returns-verify-rekey-differs")
    second.fill(f"#c{contest.id}_{bob.id}", "35")
    second.fill(f"#c{contest.id}_undervotes", "2")
    second.click("text=Compare and verify")
    expect(second.locator("#precinct-returns")).to_contain_text("verified")
    second.goto(f"{live_server.url}/elections/{made.election.id}")
    panel = second.locator(f"#tally-contest-{contest.id}")
    expect(panel).to_contain_text("Official")
    expect(panel).to_contain_text("60 · 63.16%")
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

    expect(panel).to_contain_text("64 · 64.00%", timeout=5000)  # no reload: pushed over SSE
    expect(watcher.locator("#reporting-figure")).to_contain_text("1 of 2")
    shot(watcher, "live-after")
    assert errors.messages == []


def test_a_manager_settles_a_return_whose_rekeys_differed_twice(
    live_server, browser, create_user, create_election
):
    """CSRF on: two blind re-keys differ, the clerk is told a manager decides, the manager sees the
    entry and both re-keys side by side and keeps the entry."""
    from playwright.sync_api import expect

    made = create_election(status="open", precincts=1, contests=[("Mayor", 1, ["Ann Able", "Bob Baker"])])
    precinct, (contest,), (ann, bob) = made.precincts[0], made.contests, made.candidates
    entering = signed_in(browser, live_server.url, create_user("clerk"))
    entering.goto(f"{live_server.url}/elections/{made.election.id}/returns/{precinct.id}")
    for field, value in (
        (ann.id, "60"),
        (bob.id, "35"),
        ("overvotes", "3"),
        ("undervotes", "2"),
        ("ballots_cast", "100"),
    ):
        entering.fill(f"#c{contest.id}_{field}", value)
    entering.click("text=Save the returns")
    expect(entering.locator("#toasts")).to_contain_text("saved for verification")

    verifying = signed_in(browser, live_server.url, create_user("clerk"))
    errors = PageErrors(verifying)
    verifying.goto(f"{live_server.url}/elections/{made.election.id}/returns/{precinct.id}/verify")
    for field, value in (
        (ann.id, "61"),
        (bob.id, "34"),
        ("overvotes", "3"),
        ("undervotes", "2"),
        ("ballots_cast", "100"),
    ):
        verifying.fill(f"#c{contest.id}_{field}", value)
    verifying.click("text=Compare and verify")
    verifying.fill(f"#c{contest.id}_{ann.id}", "61")
    verifying.fill(f"#c{contest.id}_{bob.id}", "34")
    verifying.click("text=Compare and verify")
    expect(verifying.locator(f"#dispute-{contest.id}")).to_contain_text("A manager decides")
    assert "60" not in verifying.locator("main").inner_text()
    shot(verifying, "returns-verify-disputed-clerk")
    assert_accessible_at_both_widths(verifying, "returns-verify-disputed-clerk")

    manager = signed_in(browser, live_server.url, create_user("manager"))
    manager.goto(f"{live_server.url}/elections/{made.election.id}/returns/{precinct.id}/verify")
    dispute = manager.locator(f"#dispute-{contest.id}")
    expect(dispute.locator("tr.table-warning")).to_have_count(2)
    expect(dispute.locator("tr.table-warning").first).to_contain_text("60")
    expect(dispute.locator("tr.table-warning").first).to_contain_text("61")
    shot(manager, "returns-verify-disputed-manager")
    assert_accessible_at_both_widths(manager, "returns-verify-disputed-manager")
    manager.click("text=Keep the entry (revision 1)")
    expect(manager.locator("#toasts")).to_contain_text("the entry was kept and verified")
    manager.goto(f"{live_server.url}/elections/{made.election.id}/returns")
    expect(manager.locator("#precinct-returns")).to_contain_text("verified")
    assert errors.messages == []
