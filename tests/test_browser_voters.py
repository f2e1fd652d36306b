"""In headless Chromium: active search over the roll, and an import with its progress bar."""

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


def test_active_search(live_server, browser, create_user, create_voters, create_precinct):
    from playwright.sync_api import expect

    precinct = create_precinct(code="111-C")
    create_voters(
        [("Smith", "John"), ("Smith", "Jane"), ("Smithers", "Waylon"), ("Jones", "Ann")], precinct=precinct
    )
    create_voters(count=80, precinct=precinct)
    user = create_user("clerk")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = PageErrors(page)
    sign_in(page, live_server.url, user)
    page.goto(f"{live_server.url}/voters")
    expect(page.locator("#voter-count")).to_contain_text("84 voters")
    page.locator("#voter-q").press_sequentially("smith", delay=40)
    expect(page.locator("#voter-list .voter-row")).to_have_count(3)
    expect(page).to_have_url(f"{live_server.url}/voters?q=smith&precinct=&status=&party=&sort=name")
    page.select_option("#voter-sort", "-name")
    expect(page.locator(".voter-name").first).to_have_text("Smithers, Waylon")
    shot(page, "voters-search")
    page.fill("#voter-q", "")
    page.locator("#voter-q").press_sequentially("smith j", delay=40)
    expect(page.locator("#voter-list .voter-row")).to_have_count(2)
    page.locator("tr", has_text="Smith, Jane").locator("a").click()  # the voter ID links to the voter
    expect(page.locator("h1")).to_contain_text("Jane")
    shot(page, "voter-detail")
    assert errors.messages == []


SMALL_FILE = 1_000  # the same flow with 100,000 rows is `make bench` (bench/import_browser.py)


@pytest.fixture
def held_check(monkeypatch):
    """The import's check waits to be released, so the page shows its progress bar and polls it
    first (a small file is checked before the browser could see the bar)."""
    import asyncio
    import threading

    from portal.voters import importing

    release = threading.Event()
    check_file = importing.check_file

    async def held(job_id):
        await asyncio.to_thread(release.wait, 60)
        return await check_file(job_id)

    monkeypatch.setattr(importing, "check_file", held)
    yield release
    release.set()


def test_import_with_progress(
    live_server, browser, create_user, create_precinct, create_party, tmp_path, held_check, monkeypatch
):
    from playwright.sync_api import expect

    from portal.demo.voterfile import write_voter_csv
    from portal.voters.importing import load

    monkeypatch.setattr(load, "BULK_MIN_ROWS", 1)  # the bulk load, as 100,000 rows into an empty roll
    codes = [create_precinct(code=f"{n}-A").code for n in range(1, 6)]
    create_party(abbreviation="DEM")
    path = write_voter_csv(
        tmp_path / "county.csv", SMALL_FILE, precinct_codes=codes, party_abbreviations=["DEM"]
    )
    rows = f"{SMALL_FILE:,}"
    user = create_user("manager")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = PageErrors(page)
    sign_in(page, live_server.url, user)
    page.goto(f"{live_server.url}/voters/import")
    shot(page, "import-upload")
    page.set_input_files("#file", str(path))
    page.click("text=Upload and preview")
    expect(page.locator("h2", has_text="How the columns map")).to_be_visible()
    expect(page.locator("#map_date_of_birth")).to_have_value("4")
    shot(page, "import-preview")
    page.click("text=Check every row")
    progress = page.locator("progress.import-progress")
    expect(progress).to_be_visible()
    shot(page, "import-progress")
    held_check.set()
    expect(page.locator("text=Every row passed the checks")).to_be_visible(timeout=60_000)
    expect(page.locator(".import-counts")).to_contain_text(rows)
    # A first load in bulk: the page says every page of the portal waits until it is stored.
    expect(page.locator(".import-bulk")).to_contain_text("The portal pauses during this load.")
    shot(page, "import-checked")
    page.click(f"text=Load {rows} rows")
    expect(page.locator(f"text=Loaded: {rows} new voters")).to_be_visible(timeout=60_000)
    shot(page, "import-loaded")
    page.goto(f"{live_server.url}/voters")
    # The whole roll is counted exactly (kept by triggers, which the bulk load leaves in place).
    expect(page.locator("#voter-count")).to_have_text(f"{rows} voters")
    assert errors.messages == []


def test_a_file_above_16_mb_uploads_in_chromium(live_server, browser, create_user, create_precinct, tmp_path):
    """With CSRF on, as the browser sends it: the form above the app-wide 16 MB limit reaches the
    upload route's own limit (it used to answer 413 "larger than the limit of 16 MB")."""
    from playwright.sync_api import expect

    from portal.demo.voterfile import write_voter_csv

    codes = [create_precinct(code=f"{n}-B").code for n in range(1, 4)]
    path = write_voter_csv(tmp_path / "state.csv", 200_000, precinct_codes=codes, party_abbreviations=[])
    assert path.stat().st_size > 17 * (1 << 20)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = PageErrors(page)
    sign_in(page, live_server.url, create_user("manager"))
    page.goto(f"{live_server.url}/voters/import")
    page.set_input_files("#file", str(path))
    page.click("text=Upload and preview")
    expect(page.locator("h2", has_text="How the columns map")).to_be_visible(timeout=60_000)
    expect(page.locator("text=state.csv").first).to_be_visible()
    assert "413" not in page.title() and errors.messages == []


def test_a_north_carolina_file_in_chromium(
    live_server, browser, create_user, create_precinct, create_party, tmp_path
):
    """A file in NC's published layout maps itself; after the check the missing precinct is read
    as an existing one and the missing party created, from the page; then it loads."""
    from playwright.sync_api import expect

    from tests.voter_files import nc_row, state_file

    create_precinct(code="01-07")
    create_party(abbreviation="DEM")
    path = tmp_path / "ncvoter92.txt"
    rows = [
        nc_row(1),
        nc_row(2, party_cd="LIB", first_name="NOOR"),
        nc_row(3, precinct_abbrv="01-09", first_name="IDA"),
    ]
    path.write_bytes(state_file("nc-ncvoter", rows))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = PageErrors(page)
    sign_in(page, live_server.url, create_user("manager"))
    page.goto(f"{live_server.url}/voters/import")
    page.set_input_files("#file", str(path))
    page.click("text=Upload and preview")
    expect(page.locator(".import-layout")).to_contain_text("North Carolina statewide voter file (ncvoter)")
    expect(page.locator("#date_format")).to_have_value("us")
    shot(page, "import-nc-recognised")
    page.click("text=Check every row")
    expect(page.locator(".missing-reference")).to_be_visible(timeout=30_000)
    page.fill("input[name=precinct_0]", "01-07")
    shot(page, "import-nc-missing")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the page itself does not scroll sideways
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "import-nc-missing-390")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.click("text=Apply and check again")
    expect(page.locator("text=Every row passed the checks")).to_be_visible(timeout=30_000)
    page.click("text=Load 3 rows")
    expect(page.locator("text=Loaded: 3 new voters")).to_be_visible(timeout=30_000)
    page.goto(f"{live_server.url}/voters?q=moore")
    expect(page.locator("#voter-list .voter-row")).to_have_count(3)
    page.locator("#voter-list .voter-row a").first.click()
    expect(page.locator("dd", has_text="1974 (year only)")).to_be_visible()
    shot(page, "voter-year-only")
    page.emulate_media(media="print")
    shot(page, "voter-year-only-print")
    page.emulate_media(media="screen")
    page.click("text=Edit")
    expect(page.locator("#birth_year")).to_have_value("1974")
    expect(page.locator("#date_of_birth")).to_have_value("")
    page.fill("#birth_year", "1850")
    page.click("text=Save voter")
    expect(page.locator("#birth_year.is-invalid")).to_be_visible()
    shot(page, "voter-form-year-only")
    assert errors.messages == []
