"""The voter roll: search, keyset pages, edit, remove, export."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from html import unescape

import pytest

from tests.conftest import HX

NAMES = [("Smith", "John"), ("Smith", "Jane"), ("Smithers", "Waylon"), ("Jones", "Ann"), ("O'Brien", "Pat")]


def rows(html: str) -> list[str]:
    names = re.findall(r'<td class="voter-name">([^<]+)', html)
    return [unescape(re.sub(r"\s+", " ", n).strip()) for n in names]


@pytest.fixture
def clerk(client_as):
    return client_as("clerk")


def test_search_modes(clerk, create_voters, create_precinct):
    create_voters(NAMES)
    assert rows(clerk.get("/voters?q=smith", headers=HX).text) == [
        "Smith, Jane",
        "Smith, John",
        "Smithers, Waylon",
    ]
    assert rows(clerk.get("/voters?q=smith+jo", headers=HX).text) == ["Smith, John"]
    assert rows(clerk.get("/voters?q=Smith,+Ja", headers=HX).text) == ["Smith, Jane"]
    assert rows(clerk.get("/voters?q=o%27b", headers=HX).text) == ["O'Brien, Pat"]
    assert rows(clerk.get("/voters?q=%25", headers=HX).text) == []  # wildcards are literal
    voter_id = re.search(r">(T\d{8})<", clerk.get("/voters?q=jones", headers=HX).text).group(1)
    assert rows(clerk.get(f"/voters?q={voter_id.lower()}", headers=HX).text) == ["Jones, Ann"]
    number = re.search(r"<td>(\d+) Main St", clerk.get("/voters?q=jones", headers=HX).text).group(1)
    assert "Jones, Ann" in rows(clerk.get(f"/voters?q={number}+main", headers=HX).text)


def test_filters_and_sorts(clerk, create_voters, create_precinct, create_party):
    party = create_party(abbreviation="GRN")
    north, south = create_precinct(code="N-1"), create_precinct(code="S-1")
    create_voters([("Adams", "Amy")], precinct=north, party_id=party.id)
    create_voters([("Baker", "Bea")], precinct=south, status="inactive")
    create_voters([("Clark", "Cy")], precinct=south)
    assert rows(clerk.get("/voters?precinct=s-1", headers=HX).text) == ["Baker, Bea", "Clark, Cy"]
    assert rows(clerk.get("/voters?status=inactive", headers=HX).text) == ["Baker, Bea"]
    assert rows(clerk.get("/voters?party=grn", headers=HX).text) == ["Adams, Amy"]
    assert rows(clerk.get("/voters?party=none", headers=HX).text) == ["Baker, Bea", "Clark, Cy"]
    assert rows(clerk.get("/voters?sort=-name", headers=HX).text) == ["Clark, Cy", "Baker, Bea", "Adams, Amy"]
    assert rows(clerk.get("/voters?sort=-voter_id", headers=HX).text) == [
        "Clark, Cy",
        "Baker, Bea",
        "Adams, Amy",
    ]
    unknown = clerk.get("/voters?precinct=NOPE", headers=HX).text
    assert "There is no precinct NOPE." in unknown and rows(unknown) == []


def test_keyset_pages_cover_everything_once_both_ways(clerk, create_voters):
    create_voters(count=123)
    for sort in ("name", "-name", "registered", "voter_id", "-voter_id"):
        seen, url = [], f"/voters?sort={sort}"
        pages = []
        while url:
            html = clerk.get(url, headers=HX).text
            pages.append(rows(html))
            seen += rows(html)
            match = re.search(r'id="voter-next" href="([^"]+)"', html)
            url = match.group(1).replace("&amp;", "&") if match else None
        assert len(seen) == 123 and len(set(seen)) == 123, sort
        assert [len(p) for p in pages] == [50, 50, 23]
        # Previous from the last page gives the middle page again.
        html = clerk.get(f"/voters?sort={sort}", headers=HX).text
        for _ in range(2):
            next_url = re.search(r'id="voter-next" href="([^"]+)"', html).group(1).replace("&amp;", "&")
            html = clerk.get(next_url, headers=HX).text
        prev_url = re.search(r'href="([^"]+)"[^>]*>← Previous', html).group(1).replace("&amp;", "&")
        assert rows(clerk.get(prev_url, headers=HX).text) == pages[1], sort
    assert "More than" not in clerk.get("/voters").text and "123 voters" in clerk.get("/voters").text


def test_bad_cursor_falls_back_to_the_first_page(clerk, create_voters):
    create_voters(count=3)
    for cursor in ("garbage", "W10", "WyJ4Il0", "%FF"):  # (a NUL is refused outright: test_hostile)
        response = clerk.get(f"/voters?after={cursor}", headers=HX)
        assert response.status_code == 200 and len(rows(response.text)) == 3


def test_the_search_is_a_bookmarkable_page(clerk, create_voters):
    create_voters(NAMES)
    page = clerk.get("/voters?q=smith&status=active&sort=-name")
    assert "<html" in page.text and 'value="smith"' in page.text
    assert 'value="-name" selected' in page.text and rows(page.text)[0] == "Smithers, Waylon"


VOTER = {
    "state_voter_id": "nc123456",
    "first_name": "Ada",
    "middle_name": "",
    "last_name": "Lovelace",
    "date_of_birth": "1985-12-10",
    "address": "12 Analytical Way",
    "city": "Riverton",
    "postal_code": "27601",
    "party_id": "0",
    "status": "active",
    "registration_date": "2004-01-15",
}


def test_create_and_show_a_voter(clerk, create_precinct):
    create_precinct(code="111-C")
    response = clerk.post("/voters/new", data={**VOTER, "precinct_code": "111-c"})
    assert response.status_code == 303
    page = clerk.get(response.location).text
    assert "NC123456" in page and "Ada" in page and "111-C" in page and "No participation recorded." in page


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"state_voter_id": "ab"}, "state_voter_id", "4 to 20 letters and digits"),
        ({"state_voter_id": "NC 123"}, "state_voter_id", "4 to 20 letters and digits"),
        ({"date_of_birth": "1850-01-01"}, "date_of_birth", "between 1900 and today"),
        ({"date_of_birth": "10/12/1985"}, "date_of_birth", "Enter the date of birth as YYYY-MM-DD"),
        ({"date_of_birth": ""}, "birth_year", "Enter the date of birth, or at least the birth year."),
        ({"date_of_birth": "", "birth_year": "1850"}, "birth_year", "between 1900 and"),
        ({"date_of_birth": "", "birth_year": "19x5"}, "birth_year", "Not a valid integer"),
        ({"birth_year": "1984"}, "birth_year", "The date of birth says 1985"),
        (
            {"date_of_birth": "", "birth_year": "1990", "registration_date": "2005-12-31"},
            "registration_date",
            "under 16 when registered",
        ),
        ({"registration_date": "2099-01-01"}, "registration_date", "cannot be in the future"),
        ({"registration_date": "1990-01-01"}, "registration_date", "under 16 when registered"),
        ({"precinct_code": "NOPE-9"}, "precinct_code", "There is no precinct NOPE-9."),
        ({"first_name": ""}, "first_name", "Enter the first name."),
        ({"last_name": "<b>x</b>"}, "last_name", "no HTML or spreadsheet formulas"),
        ({"last_name": '=HYPERLINK("http://x","y")'}, "last_name", "no HTML or spreadsheet formulas"),
        ({"first_name": "+SUM(1,1)"}, "first_name", "no HTML or spreadsheet formulas"),
        ({"first_name": "@SUM(1,1)"}, "first_name", "no HTML or spreadsheet formulas"),
        ({"middle_name": "-1"}, "middle_name", "no HTML or spreadsheet formulas"),
        ({"last_name": "x" * 81}, "last_name", "cannot be longer than 80"),
        ({"status": "deceased"}, "status", "Not a valid choice"),
    ],
)
def test_bad_voter_input(clerk, create_precinct, changes, field, message):
    create_precinct(code="111-C")
    response = clerk.post("/voters/new", data={**VOTER, "precinct_code": "111-C", **changes}, headers=HX)
    assert response.status_code == 422 and message in response.text, message
    assert "0 voters" in clerk.get("/voters").text


def test_duplicate_voter_id_names_the_holder(clerk, create_precinct, create_voters):
    precinct = create_precinct(code="111-C")
    create_voters([("Holder", "Hal")], precinct=precinct, state_voter_id="NC123456")
    response = clerk.post("/voters/new", data={**VOTER, "precinct_code": "111-C"}, headers=HX)
    assert response.status_code == 422 and "Voter ID NC123456 already belongs to Hal Holder." in response.text


def test_likely_duplicates_are_flagged_not_merged(clerk, create_precinct, create_voters):
    precinct = create_precinct(code="111-C")
    create_voters([("Lovelace", "Ada")], precinct=precinct, date_of_birth=date(1985, 12, 10))
    response = clerk.post("/voters/new", data={**VOTER, "precinct_code": "111-C"})
    assert response.status_code == 303
    page = clerk.get(response.location).text
    assert "Possible duplicate" in page and "2 voters" in clerk.get("/voters?q=lovelace").text


def test_a_voter_known_by_birth_year_only(clerk, client_as, create_precinct, create_voters):
    """A state's file often gives the year only: the form takes it, the pages and the export show
    it, and a same-name voter born that year is a weaker match than one with the same full date."""
    precinct = create_precinct(code="111-C")
    create_voters([("Lovelace", "Ada")], precinct=precinct, date_of_birth=date(1985, 12, 10))
    create_voters([("Lovelace", "Ada")], precinct=precinct, date_of_birth=None, birth_year=1985)
    response = clerk.post(
        "/voters/new", data={**VOTER, "precinct_code": "111-C", "date_of_birth": "", "birth_year": "1985"}
    )
    assert response.status_code == 303
    page = clerk.get(response.location).text
    assert "1985 (year only)" in page
    assert page.count("Weaker match: same name and") == 2 and "Possible duplicate" not in page
    again = {**VOTER, "state_voter_id": "NC999", "precinct_code": "111-C"}
    full = clerk.get(clerk.post("/voters/new", data=again).location).text
    assert "Possible duplicate: same name and" in full and "Weaker match" in full
    export = client_as("manager").get("/voters/export.csv?q=lovelace").text.splitlines()
    assert "date_of_birth,birth_year" in export[0]
    assert any(",,1985," in line for line in export) and any(",1985-12-10,1985," in line for line in export)
    edit = clerk.get(f"/voters/{response.location.rsplit('/', 1)[1]}/edit").text
    assert 'name="birth_year"' in edit and 'value="1985"' in edit


def test_edit_stale_edit_and_remove(client_as, create_precinct, create_voters):
    precinct = create_precinct(code="111-C")
    [voter_id] = create_voters([("Lee", "Ann")], precinct=precinct)
    first, second = client_as("clerk"), client_as("manager")
    form = first.get(f"/voters/{voter_id}/edit").text
    data = {
        name: re.search(rf'name="{name}"[^>]*value="([^"]*)"', form).group(1)
        for name in (
            "state_voter_id",
            "first_name",
            "last_name",
            "date_of_birth",
            "address",
            "precinct_code",
            "registration_date",
            "version",
        )
    }
    data |= {"status": "active", "party_id": "0"}
    assert first.post(f"/voters/{voter_id}/edit", data={**data, "address": "1 New Rd"}).status_code == 303
    response = second.post(f"/voters/{voter_id}/edit", data={**data, "address": "2 Old Rd"}, headers=HX)
    assert response.status_code == 409 and f"changed by {first.user.display_name}" in response.text
    assert "1 New Rd" in second.get(f"/voters/{voter_id}").text
    # A removal confirmed on a stale page is refused once; the dialog then holds the newest version,
    # so confirming again removes the voter as the record now stands.
    stale = second.post(f"/voters/{voter_id}/remove", data={"version": data["version"]}, headers=HX)
    assert stale.status_code == 409 and f"changed by {first.user.display_name}" in stale.text
    version = re.search(r'name="version" type="hidden" value="(\d+)"', stale.text).group(1)
    assert version != data["version"]
    assert second.post(f"/voters/{voter_id}/remove", data={"version": version}).status_code == 303
    page = second.get(f"/voters/{voter_id}").text
    assert "removed" in page and "Lee" in page  # the record stays
    assert second.get(f"/voters/{voter_id}/remove").status_code == 409


def test_export_is_streamed_and_formula_safe(client_as, create_precinct, create_voters):
    precinct = create_precinct(code="111-C")
    create_voters(
        [
            ('=HYPERLINK("http://x")', "Eve"),
            ("+1", "Plus"),
            ("-2", "Minus"),
            ("@SUM(A1)", "At"),
            ("Normal", "Ned"),
        ],
        precinct=precinct,
    )
    create_voters(count=12, precinct=precinct)
    manager = client_as("manager")
    response = manager.get("/voters/export.csv")
    assert response.status_code == 200 and response.is_streamed
    assert response.headers["Content-Disposition"] == 'attachment; filename="voters.csv"'
    table = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert table[0][:3] == ["state_voter_id", "last_name", "first_name"]
    last_names = [row[1] for row in table[1:]]
    assert len(last_names) == 17
    assert '\'=HYPERLINK("http://x")' in last_names and "'+1" in last_names and "'-2" in last_names
    assert "'@SUM(A1)" in last_names and "Normal" in last_names
    assert not [n for n in last_names if n[:1] in "=+-@"]
    searched = list(
        csv.reader(io.StringIO(manager.get("/voters/export.csv?q=normal").get_data(as_text=True)))
    )
    assert [row[1] for row in searched[1:]] == ["Normal"]


def test_export_in_chunks_keeps_every_row(client_as, create_precinct, create_voters, monkeypatch):
    from portal.voters import routes

    monkeypatch.setattr(routes, "EXPORT_CHUNK", 7)
    create_voters(count=30)
    table = list(
        csv.reader(
            io.StringIO(client_as("admin").get("/voters/export.csv?sort=-registered").get_data(as_text=True))
        )
    )
    assert len(table) == 31 and len({row[0] for row in table[1:]}) == 30


def test_observers_do_not_see_the_roll(client_as):
    observer = client_as("observer")
    assert observer.get("/voters").status_code == 403
    assert "/voters" not in observer.get("/").text


def test_form_and_import_share_one_rule_for_names():
    """The form's validator and the import's SQL check are built from the same pattern."""
    import re
    from types import SimpleNamespace

    from portal.inputs import NAME_FORBIDDEN, NAME_FORBIDDEN_SQL, name_problem
    from portal.voters.importing import NAME_FIELDS
    from portal.voters.importing.checks import _checks

    job = SimpleNamespace(date_format="iso", mapping={})
    checks = {key: sql for key, sql, _ in _checks(job, today=date(2026, 11, 3)) if key in NAME_FIELDS}
    assert all(NAME_FORBIDDEN_SQL in sql for sql in checks.values()) and len(checks) == 3
    for bad in ("=1+1", "+1", "-1", "@x", "<b>", "a\x07b"):
        assert name_problem(bad) and re.search(NAME_FORBIDDEN, bad)
    for good in ("O'Brien", "Smith-Jones", "José", "Nguyễn", "van der Berg"):
        assert name_problem(good) is None


def _count_line(html: str) -> str:
    found = re.search(r'id="voter-count">(.*?)</p>', html, flags=re.S)
    return " ".join(unescape(found.group(1)).split())


def test_the_count_is_exact_where_it_is_cheap_and_says_about_otherwise(
    clerk, create_voters, create_precinct, run
):
    """The whole roll and a precinct: exact, past 1,000. A status filter past 1,000: "about N" from
    the planner's estimate. A name prefix past 1,000: "more than 1,000" (its estimate is unreliable)."""
    from sqlalchemy import text

    from portal.db import database

    big, small = create_precinct(code="BIG-1"), create_precinct(code="SML-1")
    create_voters([(f"Smith{n:04d}", "Jo") for n in range(1100)], precinct=big, status="inactive")
    create_voters([(f"Jones{n:04d}", "Al") for n in range(150)], precinct=small)
    create_voters([(f"Brown{n:04d}", "Cy") for n in range(500)], precinct=small, status="inactive")

    async def analyze():  # statistics, as autovacuum would gather them after a load
        async with database().engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE voter"))

    run(analyze())

    def count(url: str) -> str:
        return _count_line(clerk.get(url, headers=HX).text)

    assert count("/voters") == "1,750 voters"
    assert count("/voters?precinct=BIG-1") == "1,100 voters"
    assert count("/voters?precinct=big-1&status=inactive") == "1,100 voters"
    assert count("/voters?precinct=SML-1&q=jon") == "150 voters matching “jon”"
    assert count("/voters?status=inactive") == "About 1,600 voters"
    assert count("/voters?q=smith") == "More than 1,000 voters matching “smith”"
    assert count("/voters?status=active") == "150 voters"  # one page
    # A later page counts the same way (the first page alone can be counted by its rows).
    html = clerk.get("/voters", headers=HX).text
    following = re.search(r'id="voter-next" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert _count_line(clerk.get(following, headers=HX).text) == "1,750 voters"


def test_the_roll_size_follows_every_insert_delete_and_truncate(create_voters, run):
    """voter_count is kept by statement triggers: a COPY, an INSERT, a DELETE; a second writer
    neither waits for an open one (SKIP LOCKED) nor loses its change; TRUNCATE starts again at 0."""
    import asyncio

    from sqlalchemy import text

    from portal.db import reading, transaction
    from portal.voters.search import roll_size

    ids = create_voters(count=40)

    async def sizes():
        async with reading() as db:
            return await roll_size(db), await db.scalar(text("SELECT count(*) FROM voter"))

    assert run(sizes()) == (40, 40)

    async def overlapping():
        async with transaction() as first:
            await first.execute(text("DELETE FROM voter WHERE id = ANY(:ids)"), {"ids": ids[:5]})
            async with transaction() as second:  # while the first still holds its row
                await second.execute(text("SET LOCAL lock_timeout = '2s'"))
                await second.execute(
                    text(
                        "INSERT INTO voter (state_voter_id, first_name, last_name, birth_year, address,"
                        " precinct_id, registration_date)"
                        " SELECT 'X' || n, 'New', 'Voter', 1990, n || ' Elm St', precinct_id, '2020-01-01'"
                        " FROM generate_series(1001, 1003) n, (SELECT precinct_id FROM voter LIMIT 1) p"
                    )
                )
            async with reading() as db:  # the second is committed; the first is not yet
                assert await roll_size(db) == 43
        async with reading() as db:
            assert await roll_size(db) == 38
            return await db.scalar(text("SELECT count(*) FROM voter_count"))

    rows_kept = run(asyncio.wait_for(overlapping(), 10))
    assert rows_kept <= 2 and run(sizes()) == (38, 38)

    async def truncate():
        async with transaction() as db:
            await db.execute(text("TRUNCATE voter CASCADE"))

    run(truncate())
    assert run(sizes()) == (0, 0)
    create_voters(count=3)
    assert run(sizes()) == (3, 3)


def test_each_precincts_active_voters_follow_every_change(create_voters, create_precinct, run):
    """active_voter_count is kept by statement triggers: added voters, a status change, a move to
    another precinct, an update that changes neither (a check-in's last_voted_on), deletes, two
    writers at once on the same precinct (neither waits, neither is lost), and TRUNCATE."""
    import asyncio

    from sqlalchemy import text

    from portal.db import reading, transaction
    from portal.precincts.queries import registered_voters

    north, south = create_precinct(code="N-1"), create_precinct(code="S-1")
    ids = create_voters(count=30, precinct=north)
    create_voters(count=5, precinct=north, status="inactive")
    create_voters(count=10, precinct=south)

    async def counted():
        async with reading() as db:
            kept = await registered_voters(db, [north.id, south.id])
            real = dict(
                (
                    await db.execute(
                        text("SELECT precinct_id, count(*) FROM voter WHERE status = 'active' GROUP BY 1")
                    )
                ).all()
            )
            return kept, real

    async def write(*statements: str) -> None:
        async with transaction() as db:
            for statement in statements:
                await db.execute(text(statement), {"ids": ids, "south": south.id})

    def check(expected: dict) -> None:
        kept, real = run(counted())
        assert kept == real == {k: v for k, v in expected.items() if v}

    check({north.id: 30, south.id: 10})
    run(write("UPDATE voter SET status = 'inactive' WHERE id = ANY((CAST(:ids AS bigint[]))[1:4])"))
    check({north.id: 26, south.id: 10})
    run(write("UPDATE voter SET precinct_id = :south WHERE id = ANY((CAST(:ids AS bigint[]))[5:10])"))
    check({north.id: 20, south.id: 16})
    run(write("UPDATE voter SET last_voted_on = '2026-11-03' WHERE id = ANY(:ids)"))
    run(write("UPDATE voter SET status = 'active' WHERE status = 'inactive'"))  # 4 back, 5 new
    check({north.id: 29, south.id: 16})
    run(write("DELETE FROM voter WHERE id = ANY((CAST(:ids AS bigint[]))[11:15])"))
    check({north.id: 24, south.id: 16})

    async def overlapping():
        async with transaction() as first:
            await first.execute(
                text("UPDATE voter SET status = 'removed' WHERE id = ANY((CAST(:ids AS bigint[]))[16:17])"),
                {"ids": ids},
            )
            async with transaction() as second:  # while the first still holds its rows
                await second.execute(text("SET LOCAL lock_timeout = '2s'"))
                await second.execute(
                    text("UPDATE voter SET status = 'removed' WHERE id = :one"), {"one": ids[20]}
                )
            async with reading() as db:  # the second is committed; the first is not yet
                assert (await registered_voters(db, [north.id]))[north.id] == 23

    run(asyncio.wait_for(overlapping(), 10))
    check({north.id: 21, south.id: 16})

    async def truncate():
        async with transaction() as db:
            await db.execute(text("TRUNCATE voter CASCADE"))

    run(truncate())
    check({})
    create_voters(count=3, precinct=south)
    check({south.id: 3})
