"""What staff see, on every page and for every role, in headless Chromium: axe-core finds no serious or
critical accessibility issue (at 1366 px and at 390 px), the keyboard focus is visible on every control,
and no page scrolls sideways on a 390 px phone. Then the check-in desk on a phone, the election page's
precinct codes, the navbar's focus ring and the voter list's pager, one by one.

The crawl starts from the navigation bar of each role and follows the links of the pages it reaches to
one page of each kind (each election, a contest, its reports, returns, one precinct's entry, incidents,
a voter...), so a page a role cannot reach is not visited and a page it can reach is not forgotten."""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.browser import PageErrors, screenshot, shot, sign_in

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "vendor" / "axe.min.js"  # axe-core 4.14.1, vendored for the tests only
PHONE, DESKTOP = 390, 1366
ROLES = ("admin", "manager", "clerk", "observer")

# One page of each kind is enough: (kind, path pattern). Downloads, streams and the forms that open in
# a modal (new, edit, delete, status, void) are not pages of their own, but for a contest's form.
KINDS = [
    ("dashboard", r"/"),
    ("elections", r"/elections"),
    ("election", r"/elections/\d+"),
    ("contest", r"/elections/\d+/contests/\d+/edit"),
    ("reports", r"/elections/\d+/reports"),
    ("report", r"/elections/\d+/reports/(summary|canvass|turnout|certification|reconciliation)"),
    ("returns", r"/elections/\d+/returns"),
    ("return entry", r"/elections/\d+/returns/\d+"),
    ("verify", r"/elections/\d+/returns/\d+/verify"),
    ("incidents", r"/elections/\d+/incidents"),
    ("provisionals", r"/elections/\d+/provisionals"),
    ("voters", r"/voters"),
    ("voter", r"/voters/\d+"),
    ("voter import", r"/voters/import"),
    ("check-in", r"/check-in"),
    ("precincts", r"/precincts"),
    ("parties", r"/parties"),
    ("users", r"/users"),
    ("audit", r"/audit"),
    ("account", r"/account"),
]


def kind_of(path: str) -> str | None:
    for kind, pattern in KINDS:
        if re.fullmatch(pattern, path):
            if kind in ("election", "report"):  # each election (draft, open) and each report is its own
                return f"{kind} {path.rsplit('/', 1)[1]}"
            return kind
    return None


# axe runs in the page through the DevTools protocol (page.evaluate), which the portal's strict CSP
# (script-src 'self', no inline script) does not govern. page.add_script_tag(path=...) would not do:
# it inserts an inline <script> holding the file's text, and the CSP refuses to run it (a browser
# context with bypass_csp=True would, but then the crawl would not see the pages as staff get them).
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    .filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary}))}));
}"""

FOCUS_RINGS = Path(__file__).with_name("focus_rings.js")  # what a focus ring must be: see the file


def axe_violations(page) -> list[dict]:
    # Live panels are dimmed (on purpose) while their stream (re)connects, which a busy machine can
    # make last a moment after the page loads: judge the page once its figures are live.
    page.wait_for_function("!document.querySelector('.live-stale')", timeout=10_000)
    page.mouse.move(0, 0)  # nothing hovered: a button under a pointer left there shows its hover colours
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    return page.evaluate(RUN_AXE)


def focus_problems(page) -> list[str]:
    page.keyboard.press("Tab")  # the keyboard is in use: programmatic focus then shows :focus-visible
    found = page.evaluate(FOCUS_RINGS.read_text())
    assert found["checked"], "no control showed :focus-visible: the check would prove nothing"
    return found["bad"]


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def cut_off(page, selector: str) -> list[str]:
    """The elements matching `selector` that are not wholly inside the window's width."""
    return page.eval_on_selector_all(
        selector,
        """els => els.filter(e => { const r = e.getBoundingClientRect();
             return r.left < 0 || r.right > document.documentElement.clientWidth; })
           .map(e => e.outerHTML.slice(0, 80))""",
    )


def at_width(page, width: int) -> None:
    if page.viewport_size["width"] != width:
        page.set_viewport_size({"width": width, "height": 844 if width == PHONE else 900})
        # the next frame: laid out at the new width, portal.js's resize handler run
        page.evaluate("() => new Promise(done => requestAnimationFrame(() => done()))")


def open_election(run) -> int:
    from sqlalchemy import text

    from portal.db import reading

    async def go():
        async with reading() as db:
            return await db.scalar(text("SELECT id FROM election WHERE status = 'open'"))

    return run(go())


@pytest.fixture
def election_night(run, create_user):
    """The demo's data on a small scale: an open election on election night (check-ins by method,
    returns in every state, incidents), a draft one, 8 precincts and 400 voters; one user per role."""
    from portal.db import transaction
    from portal.demo.seed import load_demo

    async def go():
        async with transaction() as db:
            await load_demo(db, voters=400, precincts=8, seed=2026)

    run(go())
    return {role: create_user(role, username=f"a11y-{role}") for role in ROLES}


def desk_search(run, clerk) -> str:
    """A last name shared by voters of the open election who have not voted yet; the clerk checks
    one of them in, so the desk shows both kinds of row ("Issue ballot", and "Checked in" + "Void…")."""
    from sqlalchemy import text

    from portal.checkin.queries import record_check_in
    from portal.db import transaction

    election_id = open_election(run)

    async def go():
        async with transaction() as db:
            name, voter_id = (
                await db.execute(
                    text(
                        "SELECT last_name, min(id) FROM voter v WHERE status = 'active' AND NOT EXISTS "
                        "(SELECT 1 FROM check_in c WHERE c.voter_id = v.id) "
                        "GROUP BY last_name ORDER BY count(*) DESC, last_name LIMIT 1"
                    )
                )
            ).one()
            await record_check_in(db, actor=clerk, election_id=election_id, voter_id=voter_id, method="early")
            return name

    return run(go())


def crawl(page, base: str, extra: list[str]):
    """Pages by kind, visited in turn: the navbar's links, then one link of each kind from the pages
    they lead to. Yields (kind, url) with the page loaded (at whatever width the caller left it)."""
    nav = page.eval_on_selector_all("#nav-main a[href]", "els => els.map(e => e.href)")
    seen: set[str] = set()
    queue = [*nav, *extra]
    while queue:
        url = queue.pop(0)
        kind = kind_of(urlsplit(url).path) if url.startswith(base) else None
        if kind is None or kind in seen:
            continue
        seen.add(kind)
        page.goto(url)
        queue += page.eval_on_selector_all("main a[href]", "els => els.map(e => e.href)")
        yield kind, url


LOOK_AT = {("admin", "election 1"), ("clerk", "check-in"), ("observer", "report canvass")}  # screenshots


@pytest.fixture
def cached_live_server(app_factory):
    """The live server, but the browser keeps the static files an hour (as behind a production proxy)
    instead of asking again for the seven of them on each of the crawl's 84 pages."""
    from tests.conftest import LiveServer

    app = app_factory(WTF_CSRF_ENABLED=True, SESSION_COOKIE_SECURE=True, SEND_FILE_MAX_AGE_DEFAULT=3600)
    with LiveServer(app) as server:
        yield server


def test_every_page_for_every_role_passes_axe_shows_focus_and_fits_a_phone(
    cached_live_server, browser, election_night, run
):
    base = cached_live_server.url
    term = desk_search(run, election_night["clerk"])
    desk = f"{base}/check-in?election={open_election(run)}&q={term}"
    problems: list[str] = []
    report: list[str] = []
    started = time.perf_counter()
    for role, user in election_night.items():
        # No transitions (a colour caught halfway through a hover or a resize is not the page's own)
        context = browser.new_context(viewport={"width": DESKTOP, "height": 900}, reduced_motion="reduce")
        page = context.new_page()
        errors = PageErrors(page)
        sign_in(page, base, user.username)
        for kind, url in crawl(page, base, [f"{base}/account"]):
            if kind == "check-in":  # the desk with search results on screen, as a poll worker has it
                url = desk
                page.goto(url)
                assert page.locator("#checkin-results tbody tr").count() >= 2, "no search results on the desk"
                assert page.get_by_text("Issue ballot").count() and page.get_by_text("Void…").count()
            where = f"{role} {kind} ({urlsplit(url).path})"
            at_width(page, DESKTOP)
            found = {DESKTOP: axe_violations(page)}
            rings = focus_problems(page)
            look = (role, kind) in LOOK_AT
            if look:
                shot(page, f"crawl-{role}-{kind.replace(' ', '')}-{DESKTOP}")
            at_width(page, PHONE)
            width = page_width(page)
            found[PHONE] = axe_violations(page)
            rings += focus_problems(page)
            if look:
                shot(page, f"crawl-{role}-{kind.replace(' ', '')}-{PHONE}")
            report.append(f"{role:8} {kind:22} {width:4} px  {urlsplit(url).path}")
            if width > PHONE:
                problems.append(f"{where}: {width} px wide at {PHONE} px")
            if kind == "check-in":
                cut = cut_off(page, "#checkin-results td *")
                problems += [f"{where}: cut off at {PHONE} px: {html}" for html in cut]
            problems += [f"{where}: focus ring {ring}" for ring in sorted(set(rings))]
            for viewport, violations in found.items():
                for v in violations:
                    targets = "; ".join(n["target"] for n in v["nodes"])
                    problems.append(
                        f"{where} at {viewport} px: {v['id']} ({v['impact']}, {len(v['nodes'])} nodes) "
                        f"{v['help']}: {targets}"
                    )
            at_width(page, DESKTOP)  # the next page loads at desktop width
        assert errors.messages == [], errors.messages
        context.close()
    print("\n".join(report), f"\n{len(report)} pages in {time.perf_counter() - started:.1f} s")
    assert not problems, "\n".join(problems)


def test_the_check_in_desk_on_a_phone_and_on_a_desktop(
    live_server, browser, create_election, create_voters, create_user, create_precinct, run
):
    """Long names, addresses and voter IDs: at 390 px each voter is a card with the method menu and
    "Issue ballot" under the name, all on screen; at 1366 px it is still a table."""
    from playwright.sync_api import expect

    made = create_election(name="County General 2026", status="open", precincts=1)
    precinct = made.precincts[0]
    ids = []
    names = [
        ("Featherstonehaugh-Montgomery", "Maximiliana Josephine"),
        ("Featherstone", "Al"),
        ("Feathers", "Bo"),
    ]
    for n, (last, first) in enumerate(names):
        ids += create_voters(
            [(last, first)],
            precinct=precinct,
            state_voter_id=f"NC00{n}4581273390",
            address="12345 North Riverside Boulevard, Apartment 1204",
            status="inactive" if n == 2 else "active",
        )
    clerk = create_user("clerk", display_name="Casey Clerk")
    base = live_server.url
    page = browser.new_page(viewport={"width": PHONE, "height": 844})
    errors = PageErrors(page)
    sign_in(page, base, clerk.username)
    page.goto(f"{base}/check-in?election={made.election.id}")
    page.locator("#checkin-q").press_sequentially("feather", delay=20)
    expect(page.locator("#checkin-results tbody tr")).to_have_count(3)
    shot(page, "checkin-results-390")
    assert page_width(page) <= PHONE
    assert cut_off(page, "#checkin-results td *") == []
    # the method menu and the button sit below the voter's name, across the card
    name_box = page.locator(f"#checkin-voter-{ids[0]} td").first.bounding_box()
    select_box = page.locator(f"#method-{ids[0]}").bounding_box()
    assert select_box["y"] >= name_box["y"] + name_box["height"] - 1
    assert page.locator(f"#method-{ids[2]}").input_value() == "provisional"  # inactive: provisional

    row = page.locator(f"#checkin-voter-{ids[0]}")
    row.locator("select").select_option("early")
    row.get_by_role("button", name="Issue ballot").click()
    expect(row.locator(".badge", has_text="Checked in")).to_be_visible()
    expect(row.get_by_text("Void…")).to_be_visible()
    assert page_width(page) <= PHONE
    assert cut_off(page, "#checkin-results td *") == []
    shot(page, "checkin-issued-390")
    row.get_by_text("Void…").click()  # the void form, in the modal, on a phone
    expect(page.locator("#modal")).to_be_visible()
    page.wait_for_timeout(300)  # Bootstrap's fade
    assert axe_violations(page) == []
    assert focus_problems(page) == []
    shot(page, "checkin-void-390")
    page.locator("#modal #reason").press("Escape")  # (the focus check left the focus on the page)
    expect(page.locator("#modal")).to_be_hidden()

    page.set_viewport_size({"width": DESKTOP, "height": 900})
    expect(page.locator("#checkin-results thead")).to_be_visible()
    header = page.locator("#checkin-results thead th")
    assert header.nth(0).bounding_box()["y"] == header.nth(4).bounding_box()["y"]  # one row of headings
    assert (
        page.locator(f"#method-{ids[1]}").bounding_box()["y"]
        < page.locator(f"#checkin-voter-{ids[1]} td").first.bounding_box()["y"] + 40
    )  # the menu beside the name, on the same row
    shot(page, "checkin-issued-1366")
    assert errors.messages == []


def test_codes_never_break_inside(live_server, browser, create_election):
    """On the election page "Participating precincts" wraps between codes ("P-001"), never inside one,
    and a candidate's code ("E1-C1-1") stays on one line, at every width."""
    made = create_election(name="Codes", status="open", precincts=40)
    base = live_server.url
    page = browser.new_page(viewport={"width": PHONE, "height": 844})
    sign_in(page, base, made.actor.username)
    # a code's text on more than one line box: its range has more than one rectangle
    broken_codes = """els => els.filter(e => { const r = document.createRange(); r.selectNodeContents(e);
        return r.getClientRects().length > 1; }).map(e => e.innerText)"""
    for width in (PHONE, 1000, DESKTOP):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{base}/elections/{made.election.id}")
        codes = page.locator(".precinct-codes > span")
        assert codes.count() == 40
        assert codes.evaluate_all(broken_codes) == [], f"precinct codes broken at {width} px"
        lines = codes.evaluate_all("els => new Set(els.map(e => e.getBoundingClientRect().top)).size")
        assert lines > 1  # the list does wrap (between codes)
        assert page.locator(".candidates tbody td:nth-child(2)").evaluate_all(broken_codes) == []
        assert page_width(page) <= width
        screenshot(page.locator(".precinct-codes"), f"election-precinct-codes-{width}")
        screenshot(page.locator("#contests > li").first, f"election-contest-{width}")


def test_the_navbar_focus_ring_shows_on_the_dark_bar(live_server, browser, create_user):
    user = create_user("admin", display_name="Avery Admin")
    base = live_server.url
    page = browser.new_page(viewport={"width": DESKTOP, "height": 900})
    sign_in(page, base, user.username)
    page.goto(f"{base}/elections")
    page.keyboard.press("Tab")  # "Skip to content"
    page.keyboard.press("Tab")  # the brand
    page.keyboard.press("Tab")  # Dashboard
    focused = page.evaluate("document.activeElement.textContent.trim()")
    assert focused == "Dashboard"
    ring = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, s.outlineWidth, s.outlineColor]; })()"
    )
    assert ring == ["solid", "2px", "rgb(255, 218, 106)"]  # light amber on the near-black bar: 11:1
    screenshot(page, "navbar-focus-1366", clip={"x": 0, "y": 0, "width": 700, "height": 60})

    page.set_viewport_size({"width": PHONE, "height": 844})
    page.goto(f"{base}/elections")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # the menu button
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Menu"
    page.keyboard.press("Enter")
    page.locator("#nav-main").wait_for(state="visible")
    page.wait_for_timeout(400)  # Bootstrap's collapse transition
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Elections"
    screenshot(page, "navbar-focus-390", clip={"x": 0, "y": 0, "width": 390, "height": 320})


def test_a_keyboard_reaches_the_voter_pager_in_a_few_tabs(live_server, browser, create_user, create_voters):
    """50 voter-ID links stand between the search box and "Next →": a skip link at the top of the
    results jumps over them."""
    create_voters(count=120)
    user = create_user("clerk")
    base = live_server.url
    page = browser.new_page(viewport={"width": DESKTOP, "height": 900})
    sign_in(page, base, user.username)
    page.goto(f"{base}/voters")
    page.locator("#voter-q").focus()

    def tabs_to(condition: str, limit: int = 80) -> int:
        for n in range(1, limit + 1):
            page.keyboard.press("Tab")
            if page.evaluate(condition):
                return n
        raise AssertionError(f"not reached in {limit} Tabs: {condition}")

    to_skip = tabs_to("document.activeElement.textContent.trim() === 'Skip to the pager'")
    assert page.locator("a", has_text="Skip to the pager").is_visible()  # shown while it has focus
    shot(page, "voters-skip-to-pager")
    page.keyboard.press("Enter")
    after_skip = tabs_to("document.activeElement.id === 'voter-next'")
    assert to_skip + 1 + after_skip <= 8, (to_skip, after_skip)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"after="))
    page.locator("#voter-q").focus()
    without = tabs_to("document.activeElement.id === 'voter-next'", limit=120)  # on page 2, tabbing through
    assert without > 50  # what the skip link saves
    print(f"Next → in {to_skip} Tabs + Enter + {after_skip} Tab(s) with the skip link; {without} without")
