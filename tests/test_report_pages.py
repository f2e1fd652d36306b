"""Printed reports in headless Chromium, page by page: a contest that runs onto another page takes
its title with it (canvass and summary, on A4 and on US Letter), and the paper is used densely.

Each printed page is read back with poppler's `pdftotext -layout`, one page at a time: every row on
a page must come after a contest title on that same page, and the rows credited to each contest
that way must be exactly its own (every precinct once in the canvass, its choices in the summary).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text

from portal.reports.routes import CANVASS_COLUMNS
from tests.browser import pdf_folder, pdf_pictures, screenshot, sign_in

PAPERS = ("A4", "Letter")
SURNAMES = ["Abbott", "Barlow", "Carver", "Dalton", "Easton", "Fowler", "Garner", "Hadley", "Ingram"]
FIRST = ["Ann", "Ben", "Cara", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo"]
# (title, vote for, how many candidates); measures are added as "Ballot Question N" (Yes / No).
OFFICES = [
    ("Mayor", 1, 4),
    ("City Council", 3, 9),
    ("School Board", 2, 6),
    ("Sheriff", 1, 3),
    ("County Clerk", 1, 3),
    ("Treasurer", 1, 5),
    ("Water Board", 2, 7),
    ("Coroner", 1, 2),
]
DELEGATES = 64  # a contest longer than any page in the summary too (vote for 8)
MEASURES = ["Ballot Question 1", "Ballot Question 2", "Ballot Question 3", "Ballot Question 4"]
PRECINCTS = 70  # every contest of the canvass runs onto a second page


def _pdftotext() -> None:
    if not shutil.which("pdftotext"):
        pytest.skip("poppler-utils is not installed")


@pytest.fixture
def crowded(request, create_election, client_as, run):
    """An open election of 8 offices (up to 9 candidates each), 64 delegates and 4 ballot questions
    over 70 precincts, every precinct's returns entered: a canvass and a summary of several pages,
    with contests longer than a page in each."""
    from portal.contests.queries import create_contest
    from portal.db import transaction

    contests = [
        (title, vote_for, [f"{FIRST[i]} {SURNAMES[n]}" for i in range(count)])
        for n, (title, vote_for, count) in enumerate(OFFICES)
    ]
    contests.append(("Delegates", 8, [f"Delegate {n:02d}" for n in range(1, DELEGATES + 1)]))
    methods = getattr(request, "param", ("election_day",))  # by voting method: 3 rows a precinct
    precincts = PRECINCTS if len(methods) == 1 else PRECINCTS // 2
    made = create_election(status="draft", precincts=precincts, contests=contests, methods=methods)

    async def add_measures_and_open():
        async with transaction() as db:
            for title in MEASURES:
                await create_contest(
                    db,
                    actor=made.actor,
                    election_id=made.election.id,
                    office_title=title,
                    vote_for=1,
                    is_measure=True,
                    precinct_ids=None,
                )
        async with transaction() as db:
            await db.execute(
                text("UPDATE election SET status = 'open' WHERE id = :e"), {"e": made.election.id}
            )

    run(add_measures_and_open())
    clerk = client_as("clerk")
    for p, (precinct, method) in enumerate((p, m) for p in made.precincts for m in methods):
        url = f"/elections/{made.election.id}/returns/{precinct.id}?method={method}"
        names = re.findall(r'name="(c(\d+)_(\w+))"', clerk.get(url).text)
        by_contest: dict[str, list[str]] = {}
        for _, contest, key in names:
            by_contest.setdefault(contest, []).append(key)
        values = {}
        vote_for = {str(c.id): c.vote_for for c in made.contests}
        for contest, keys in by_contest.items():
            people = [k for k in keys if k.isdigit()]
            ballots = 200 + 37 * p + 11 * len(people)
            seats = vote_for.get(contest, 1)
            votes = [(ballots * seats // (len(people) + 1)) - (i % 7) * 2 for i in range(len(people))]
            over = 1 + p % 3
            under = ballots * seats - sum(votes) - over
            assert under >= 0
            values.update({f"c{contest}_{k}": str(v) for k, v in zip(people, votes, strict=True)})
            values.update(
                {
                    f"c{contest}_overvotes": str(over),
                    f"c{contest}_undervotes": str(under),
                    f"c{contest}_ballots_cast": str(ballots),
                }
            )
        assert clerk.post(url, data=values).status_code == 303
    made.titles = [title for title, _, _ in contests] + MEASURES
    made.methods = methods
    made.choices = {title: names for title, _, names in contests} | {m: ["Yes", "No"] for m in MEASURES}
    return made


def print_pdf(page, base: str, election_id: int, name: str, paper: str, folder: Path) -> Path:
    page.goto(f"{base}/elections/{election_id}/reports/{name}")
    page.emulate_media(media="print")
    pdf = folder / f"print-{name}-{paper}.pdf"
    page.pdf(path=str(pdf), format=paper, print_background=True)
    return pdf


def page_texts(pdf: Path) -> list[str]:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(info.split("Pages:")[1].split()[0])
    return [
        subprocess.run(
            ["pdftotext", "-layout", "-f", str(n), "-l", str(n), str(pdf), "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for n in range(1, pages + 1)
    ]


def rows_by_contest(pages: list[str], titles: list[str], row_of) -> dict[str, list[str]]:
    """Credit every row of every page to the contest whose title came last before it on that same
    page; a row with no title above it on its page fails (a contest split without its title)."""
    credited: dict[str, list[str]] = {t: [] for t in titles}
    for number, printed in enumerate(pages, start=1):
        current = None
        for line in printed.splitlines():
            words = line.strip()
            title = next((t for t in titles if words == t or words.startswith(t + " ·")), None)
            if title:
                current = title
                continue
            row = row_of(words)
            if row is None:
                continue
            assert current, f"page {number}: {row!r} has no contest title above it on its page\n{printed}"
            credited[current].append(row)
    return credited


@pytest.mark.browser
@pytest.mark.parametrize("crowded", [("election_day",), ("election_day", "absentee")], indirect=True)
def test_a_contest_never_continues_on_a_page_without_its_title(
    crowded, live_server, browser, create_user, tmp_path
):
    _pdftotext()
    folder = pdf_folder(tmp_path)
    page = browser.new_page()
    sign_in(page, live_server.url, create_user("observer").username)
    codes = [p.code for p in crowded.precincts]
    choice_of = {name: name for names in crowded.choices.values() for name in names}
    footers = ("Overvotes", "Undervotes", "Ballots cast")

    def canvass_row(words: str) -> str | None:
        first = words.split("  ")[0]
        return first if first in codes or first == "Total" else None

    def summary_row(words: str) -> str | None:
        first = re.split(r"\s{2,}", words)[0]
        return first if first in choice_of or first in footers else None

    counts = {}
    split = "-by-method" if len(crowded.methods) > 1 else ""
    for paper in PAPERS:
        canvass = page_texts(print_pdf(page, live_server.url, crowded.election.id, "canvass", paper, folder))
        summary = page_texts(print_pdf(page, live_server.url, crowded.election.id, "summary", paper, folder))
        counts[paper] = (len(canvass), len(summary))
        for name in ("canvass", "summary"):
            pdf_pictures(folder / f"print-{name}-{paper}.pdf", f"print-{name}{split}-{paper}")
        assert len(canvass) > 2 and len(summary) > 1, counts
        credited = rows_by_contest(canvass, crowded.titles, canvass_row)
        for title in crowded.titles:
            parts = -(-len(crowded.choices[title]) // CANVASS_COLUMNS)  # a wide contest prints in parts
            assert sorted(credited[title]) == sorted([*codes, "Total"] * parts), (paper, title)
        credited = rows_by_contest(summary, crowded.titles, summary_row)
        for title in crowded.titles:
            assert credited[title] == [*crowded.choices[title], *footers], (paper, title)
    print("pages (canvass, summary):", split, counts)


@pytest.mark.browser
def test_every_report_prints_on_a4_and_letter_and_fits_a_phone(
    crowded, live_server, browser, create_user, tmp_path
):
    """Every printed report (and the audit log's print) on both papers, each page kept to look at
    with PORTAL_SCREENSHOTS (print-<report>-<paper>-N.png); on a 390 px phone no report scrolls sideways."""
    from portal.reports.routes import REPORTS

    _pdftotext()
    folder = pdf_folder(tmp_path)
    page = browser.new_page()
    sign_in(page, live_server.url, create_user("admin").username)
    base = f"{live_server.url}/elections/{crowded.election.id}/reports"
    targets = {name: f"{base}/{name}" for name in REPORTS}
    targets["audit"] = f"{live_server.url}/audit"
    for name, url in targets.items():
        page.set_viewport_size({"width": 1280, "height": 900})
        page.emulate_media(media="print")
        page.goto(url)
        for paper in PAPERS:
            pdf = folder / f"print-{name}-{paper}.pdf"
            page.pdf(path=str(pdf), format=paper, print_background=True)
            pages = page_texts(pdf)
            assert f"Page 1 of {len(pages)}" in pages[0], (name, paper)
            assert all("Sign out" not in text for text in pages), (name, paper)
            if name != "audit":
                assert all(crowded.election.name in text for text in pages), (name, paper)  # running header
            pdf_pictures(pdf, f"print-{name}-{paper}")
        page.emulate_media(media="screen")
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(url)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, name
        screenshot(page, f"report-{name}-390")
