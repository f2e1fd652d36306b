"""Counting groups: returns entered, verified and reported per voting method (with CSRF on, as a
browser sends the forms)."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from sqlalchemy import func, select, text

from portal.db import reading, transaction
from portal.models import AuditEvent, CountingGroup, PrecinctReturn
from tests.conftest import HX, move_election
from tests.test_account import Browser
from tests.test_reports import validator  # noqa: F401 - fixture

ALL = ["election_day", "early", "absentee", "provisional"]


@pytest.fixture
def csrf_app(app_factory):
    return app_factory(WTF_CSRF_ENABLED=True)


@pytest.fixture
def as_role(csrf_app, create_user):
    def factory(role):
        user = create_user(role)
        browser = Browser(csrf_app)
        assert browser.sign_in(user.username).status_code == 302
        browser.user = user
        return browser

    return factory


@pytest.fixture
def night(create_election):
    """An open election counting election day and mail, two precincts, Mayor (Ann, Bob)."""
    return create_election(status="open", precincts=2, methods=("election_day", "absentee"))


def figures(made, ann, bob, over=0, under=0, ballots=None):
    contest = made.contests[0]
    a, b = made.candidates
    ballots = ann + bob + over + under if ballots is None else ballots
    return {
        f"c{contest.id}_{a.id}": str(ann),
        f"c{contest.id}_{b.id}": str(bob),
        f"c{contest.id}_overvotes": str(over),
        f"c{contest.id}_undervotes": str(under),
        f"c{contest.id}_ballots_cast": str(ballots),
    }


def entry(made, precinct, method=None, suffix=""):
    base = f"/elections/{made.election.id}/returns/{precinct.id}{suffix}"
    return f"{base}?method={method}" if method else base


def stored(run, made):
    async def go():
        async with reading() as db:
            rows = await db.execute(
                select(
                    PrecinctReturn.precinct_id,
                    PrecinctReturn.method,
                    PrecinctReturn.revision,
                    PrecinctReturn.ballots_cast,
                    PrecinctReturn.status,
                )
                .where(PrecinctReturn.election_id == made.election.id)
                .order_by(PrecinctReturn.precinct_id, PrecinctReturn.method, PrecinctReturn.revision)
            )
            return [tuple(r) for r in rows]

    return run(go())


def audit_count(run, action):
    async def go():
        async with reading() as db:
            return await db.scalar(select(func.count()).where(AuditEvent.action == action))

    return run(go())


def enter_and_verify(made, clerk, checker, precinct, method, ann, bob):
    assert clerk.post(entry(made, precinct, method), figures(made, ann, bob)).status_code == 303
    contest = made.contests[0]
    response = checker.post(
        entry(made, precinct, method, "/verify"), {"mode": "confirm", f"revision_{contest.id}": "1"}
    )
    assert response.status_code == 303, response.get_data(as_text=True)


# Declaring the methods ------------------------------------------------------------------------------


def test_an_election_declares_its_methods(as_role, create_precinct, run):
    create_precinct()
    manager = as_role("manager")
    form = {"name": "Spring Special", "election_date": "2027-04-01", "kind": "special", "all_precincts": "y"}
    page = manager.get("/elections/new").get_data(as_text=True)
    assert all(f'value="{m}" checked' in page for m in ALL), "every method ticked by default"
    response = manager.post("/elections/new", {**form, "methods": ["election_day", "absentee"]})
    assert response.status_code == 303
    election_id = int(response.headers["Location"].rsplit("/", 1)[1])

    async def counted():
        async with reading() as db:
            rows = await db.scalars(
                select(CountingGroup.method).where(CountingGroup.election_id == election_id)
            )
            return sorted(rows.all())

    assert run(counted()) == ["absentee", "election_day"]
    edit = manager.get(f"/elections/{election_id}/edit").get_data(as_text=True)
    version = re.search(r'name="version" type="hidden" value="(\d+)"', edit).group(1)
    response = manager.post(
        f"/elections/{election_id}/edit",
        {**form, "version": version, "methods": ["election_day", "early", "absentee"]},
    )
    assert response.status_code == 303 and run(counted()) == ["absentee", "early", "election_day"]

    async def last_update():
        async with reading() as db:
            event = await db.scalar(
                select(AuditEvent)
                .where(AuditEvent.entity == "election", AuditEvent.action == "update")
                .order_by(AuditEvent.id.desc())
            )
            return event.before, event.after

    before, after = run(last_update())
    assert before["methods"] == ["election_day", "absentee"]
    assert after["methods"] == ["election_day", "early", "absentee"]


@pytest.mark.parametrize(
    "methods, message",
    [
        ([], "Tick at least one voting method."),
        (["election_day", "by_pigeon"], "Not a voting method: by_pigeon."),
    ],
)
def test_bad_methods_are_refused_with_a_message(as_role, create_precinct, run, methods, message):
    create_precinct()
    manager = as_role("manager")
    form = {"name": "X", "election_date": "2027-04-01", "kind": "special", "all_precincts": "y"}
    response = manager.post("/elections/new", {**form, "methods": methods})
    assert response.status_code == 422 and message in response.get_data(as_text=True)

    async def elections():
        async with reading() as db:
            return await db.scalar(text("SELECT count(*) FROM election"))

    assert run(elections()) == 0


def test_a_method_with_returns_stays_counted(night, as_role, run):
    clerk, manager = as_role("clerk"), as_role("manager")
    precinct = night.precincts[0]
    assert clerk.post(entry(night, precinct, "absentee"), figures(night, 3, 2)).status_code == 303
    url = f"/elections/{night.election.id}/edit"
    edit = manager.get(url).get_data(as_text=True)
    version = re.search(r'name="version" type="hidden" value="(\d+)"', edit).group(1)
    data = {"name": night.election.name, "election_date": "2026-11-03", "kind": "general", "version": version}
    response = manager.post(url, {**data, "methods": ["election_day"]})
    assert response.status_code == 409
    assert "Returns have already been entered for Absentee/Mail" in response.get_data(as_text=True)
    assert [r[1] for r in stored(run, night)] == ["absentee"]
    assert manager.get(url).get_data(as_text=True).count("checked") >= 2  # both still counted


# Entering and verifying per method --------------------------------------------------------------------


def test_each_method_is_entered_and_verified_on_its_own(night, as_role, run):
    clerk, checker = as_role("clerk"), as_role("clerk")
    precinct = night.precincts[0]
    page = clerk.get(entry(night, precinct)).get_data(as_text=True)
    assert "Election Day" in page and "Absentee/Mail" in page and "Early Voting" not in page
    assert "Save the Election Day returns" in page  # the first counted method when none is asked for
    enter_and_verify(night, clerk, checker, precinct, "election_day", 60, 30)
    assert clerk.post(entry(night, precinct, "absentee"), figures(night, 8, 2)).status_code == 303
    assert stored(run, night) == [
        (precinct.id, "absentee", 1, 10, "entered"),
        (precinct.id, "election_day", 1, 90, "verified"),
    ]
    page = clerk.get(entry(night, precinct, "absentee")).get_data(as_text=True)
    assert "Other methods:" in page and "Election Day 90 ballots, verified" in page
    tabs = checker.get(entry(night, precinct, "absentee", "/verify")).get_data(as_text=True)
    tabs = tabs.split('class="nav nav-tabs mb-3 method-tabs"')[1].split("</ul>")[0]
    assert re.search(r"Election Day\s*<span class=\"badge return-verified\">verified", tabs)
    assert re.search(r"Absentee/Mail\s*<span class=\"badge return-entered\">1/1", tabs)
    # The four-eyes rule holds per method: the clerk who entered mail cannot verify it.
    contest = night.contests[0]
    response = clerk.post(
        entry(night, precinct, "absentee", "/verify"), {"mode": "confirm", f"revision_{contest.id}": "1"}
    )
    assert response.status_code == 409 and "a second person must verify" in response.get_data(as_text=True)
    # An amendment of mail is mail's revision 2; election day's stays verified.
    assert clerk.post(entry(night, precinct, "absentee"), figures(night, 9, 2)).status_code == 303
    assert stored(run, night)[:2] == [
        (precinct.id, "absentee", 1, 10, "entered"),
        (precinct.id, "absentee", 2, 11, "entered"),
    ]
    assert stored(run, night)[2][4] == "verified"


def test_the_sum_rule_applies_to_each_method(night, as_role, run):
    clerk = as_role("clerk")
    response = clerk.post(entry(night, night.precincts[0], "absentee"), figures(night, 8, 2, ballots=11))
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and "Nothing was saved" in body and "= 11." in body
    assert stored(run, night) == []


@pytest.mark.parametrize(
    "method, message",
    [
        ("early", "does not count Early Voting ballots"),
        ("by_pigeon", "(not a voting method)"),
    ],
)
def test_a_method_the_election_does_not_count_is_refused(night, as_role, run, method, message):
    clerk = as_role("clerk")
    precinct = night.precincts[0]
    for response in (
        clerk.get(entry(night, precinct, method)),
        clerk.post(entry(night, precinct, method), figures(night, 1, 1), token_from=entry(night, precinct)),
        clerk.client.post(
            entry(night, precinct, method, f"/check/{night.contests[0].id}"),
            data=figures(night, 1, 1),
            headers={**HX, "X-CSRFToken": clerk.token(entry(night, precinct))},
        ),
    ):
        body = response.get_data(as_text=True)
        assert response.status_code == 409, body[:300]
        assert message in body and "It counts: Election Day, Absentee/Mail" in body
    assert stored(run, night) == [] and audit_count(run, "enter_return") == 0


def test_a_return_for_a_precinct_outside_the_contest(create_election, create_precinct, as_role, run):
    made = create_election(status="open", precincts=1, methods=("election_day", "absentee"))
    outside = create_precinct()
    clerk = as_role("clerk")
    for url in (
        entry(made, outside, "absentee"),
        entry(made, outside, "absentee", f"/check/{made.contests[0].id}"),
    ):
        response = clerk.post(url, figures(made, 1, 1), token_from=entry(made, made.precincts[0]))
        assert response.status_code == 404
        assert "does not take part in the election" in response.get_data(as_text=True)
    assert stored(run, made) == []


def test_ballots_against_the_check_ins_of_that_method(create_election, create_voters, as_role, run):
    made = create_election(status="open", precincts=1, methods=("election_day", "absentee"))
    precinct = made.precincts[0]
    voters = create_voters(count=3, precinct=precinct)
    clerk = as_role("clerk")
    for voter_id, how in zip(voters, ("in_person", "in_person", "mail"), strict=True):
        response = clerk.client.post(
            f"/check-in/{made.election.id}/voters/{voter_id}",
            data={"method": how},
            headers={**HX, "X-CSRFToken": clerk.token("/check-in")},
        )
        assert response.status_code == 200
    page = clerk.post(entry(made, precinct, "absentee"), figures(made, 2, 0), token_from="/check-in")
    assert page.status_code == 303
    body = clerk.get(entry(made, precinct, "absentee")).get_data(as_text=True)
    assert "Absentee/Mail: 1 voters checked in" in body
    response = clerk.client.post(
        entry(made, precinct, "absentee", f"/check/{made.contests[0].id}"),
        data=figures(made, 2, 0),
        headers={**HX, "X-CSRFToken": clerk.token("/check-in")},
    )
    assert "2 Absentee/Mail ballots cast but only 1 Absentee/Mail voters checked in" in response.get_data(
        as_text=True
    )


# Reports and exports (the tally of the same returns: tests/test_tally.py) -------------------------------


@pytest.fixture
def split(night, as_role):
    """Precinct 1: election day 60/30 and mail 8/2, both verified; precinct 2: election day 40/20 entered."""
    clerk, checker = as_role("clerk"), as_role("clerk")
    first, second = night.precincts
    enter_and_verify(night, clerk, checker, first, "election_day", 60, 30)
    enter_and_verify(night, clerk, checker, first, "absentee", 8, 2)
    assert clerk.post(entry(night, second, "election_day"), figures(night, 40, 20)).status_code == 303
    night.clerk, night.checker = clerk, checker
    return night


def test_the_canvass_prints_each_precinct_by_method(split, as_role):
    body = as_role("observer").get(f"/elections/{split.election.id}/reports/canvass").get_data(as_text=True)
    first, second = split.precincts
    table = body.split('class="table table-sm table-bordered report-table canvass-table canvass-by-method"')[
        1
    ]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    cells = ["|".join(c.strip() for c in re.split(r"<[^>]+>", r) if c.strip()) for r in rows]
    assert f"{first.code}|Election Day|60|30|0|0|90" in cells
    assert "Absentee/Mail|8|2|0|0|10" in cells
    assert "Subtotal|68|32|0|0|100" in cells
    assert f"{second.code}|Election Day|40|20|0|0|60" in cells
    assert "Absentee/Mail|—|—|—|—|—" in cells  # not yet entered
    assert "Total|Election Day|100|50|0|0|150" in cells
    assert "All methods|108|52|0|0|160" in cells
    assert body.count('class="canvass-precinct"') == 2


def test_csvs_carry_the_method(split, as_role):
    observer = as_role("observer")
    base = f"/elections/{split.election.id}/reports"
    rows = list(csv.reader(io.StringIO(observer.get(f"{base}/canvass.csv").get_data(as_text=True))))
    assert rows[0][3] == "method"
    first = split.precincts[0].code
    ann = [(r[3], r[6], r[7]) for r in rows if r[0] == first and r[4] == "Ann Able"]
    assert ann == [
        ("election_day", "60", "verified"),
        ("absentee", "8", "verified"),
        ("total", "68", "verified"),
    ]
    second = [(r[3], r[7]) for r in rows if r[0] == split.precincts[1].code and r[4] == "Ann Able"]
    assert second == [("election_day", "entered"), ("total", "partial")]
    summary = list(csv.reader(io.StringIO(observer.get(f"{base}/summary.csv").get_data(as_text=True))))
    assert ["Mayor", "absentee", "Ann Able", "", "8", ""] in summary
    assert ["Mayor", "total", "Ann Able", "", "108", "67.50"] in summary
    assert ["Mayor", "absentee", "Ballots cast", "", "10", ""] in summary


def test_nist_export_counts_by_method(split, as_role, validator):  # noqa: F811
    report = json.loads(as_role("observer").get(f"/elections/{split.election.id}/reports/results.json").data)
    assert [f"{list(e.path)}: {e.message[:200]}" for e in validator.iter_errors(report)] == []
    (mayor,) = report["Election"][0]["Contest"]
    ann = mayor["ContestSelection"][0]["VoteCounts"]
    counts = [(c["GpUnitId"], c["Type"], c["Count"]) for c in ann]
    first, second = (f"gpu-precinct-{p.id}" for p in split.precincts)
    assert counts == [
        ("gpu-jurisdiction", "election-day", 100),
        ("gpu-jurisdiction", "absentee-mail", 8),
        ("gpu-jurisdiction", "total", 108),
        (first, "election-day", 60),
        (first, "absentee-mail", 8),
        (first, "total", 68),
        (second, "election-day", 40),
        (second, "total", 40),
    ]
    ballots = [(b["GpUnitId"], b["Type"], b["BallotsCast"]) for b in report["Election"][0]["BallotCounts"]]
    assert ballots[:3] == [
        ("gpu-jurisdiction", "election-day", 150),
        ("gpu-jurisdiction", "absentee-mail", 10),
        ("gpu-jurisdiction", "total", 160),
    ]
    assert report["Status"] == "unofficial-partial"


def test_certification_needs_every_method_verified(split, as_role, run):
    manager = as_role("manager")
    second = split.precincts[1]
    contest = split.contests[0]
    split.checker.post(
        entry(split, second, "election_day", "/verify"), {"mode": "confirm", f"revision_{contest.id}": "1"}
    )
    assert (
        move_election(
            manager.client,
            split.election.id,
            "closed",
            csrf_token=manager.token(f"/elections/{split.election.id}"),
        ).status_code
        == 200
    )
    response = move_election(
        manager.client,
        split.election.id,
        "certified",
        csrf_token=manager.token(f"/elections/{split.election.id}"),
    )
    assert response.status_code == 409 and second.code in response.get_data(as_text=True)
    enter_and_verify(split, split.clerk, split.checker, second, "absentee", 1, 0)
    response = move_election(
        manager.client,
        split.election.id,
        "certified",
        csrf_token=manager.token(f"/elections/{split.election.id}"),
    )
    assert response.status_code == 200, response.get_data(as_text=True)

    async def record():
        async with transaction() as db:
            return (await db.execute(text("SELECT record FROM certified_result"))).scalar_one()

    frozen = run(record())
    assert frozen["format"] == 2 and frozen["methods"] == ["election_day", "absentee"]
    assert len(frozen["returns"]) == 4  # two precincts x two methods


# The migration ------------------------------------------------------------------------------------------


def test_the_migration_moves_existing_returns_into_election_day(database_url):
    """0011: existing returns become election-day returns, and an election that has returns counts that
    method only (its precincts report as before); an election without returns counts all four."""
    import asyncio

    import asyncpg
    from sqlalchemy.engine import make_url

    from portal import migrate

    url = make_url(database_url).set(database=make_url(database_url).database + "_0011")
    url = url.render_as_string(hide_password=False)
    migrate.create_database(url)
    plain = url.replace("postgresql+asyncpg", "postgresql")

    async def sql(*statements):
        conn = await asyncpg.connect(plain)
        try:
            return [await conn.fetch(s) for s in statements]
        finally:
            await conn.close()

    try:
        migrate.upgrade(url, "0010")
        asyncio.run(
            sql(
                "INSERT INTO user_account (username, display_name, password_hash, role) VALUES"
                " ('aaa', 'A', 'x', 'clerk'), ('bbb', 'B', 'x', 'clerk')",
                "INSERT INTO precinct (code, name) VALUES ('P1', 'One')",
                "INSERT INTO election (name, election_date, kind, status) VALUES"
                " ('Counted', '2026-11-03', 'general', 'open'), ('Empty', '2027-01-01', 'special', 'draft')",
                "INSERT INTO contest (election_id, office_title) VALUES (1, 'Mayor')",
                "INSERT INTO precinct_return (election_id, precinct_id, contest_id, ballots_cast, status,"
                " entered_by_id, verified_by_id, verified_at) VALUES (1, 1, 1, 5, 'verified', 1, 2, now())",
            )
        )
        migrate.upgrade(url)
        returns, groups = asyncio.run(
            sql(
                "SELECT method, revision, ballots_cast, status FROM precinct_return",
                "SELECT election_id, method FROM counting_group ORDER BY election_id, method",
            )
        )
        assert [tuple(r) for r in returns] == [("election_day", 1, 5, "verified")]
        assert [tuple(g) for g in groups] == [
            (1, "election_day"),
            (2, "absentee"),
            (2, "early"),
            (2, "election_day"),
            (2, "provisional"),
        ]
    finally:
        migrate.drop_database(url)


def test_the_summary_gives_each_choice_by_method_and_in_total(split, as_role):
    body = as_role("observer").get(f"/elections/{split.election.id}/reports/summary").get_data(as_text=True)
    contest = body.split('class="report-contest')[1]
    # (without the contest title that only prints)
    rows = re.findall(r"<tr(?! class=\"report-title-row)[^>]*>(.*?)</tr>", contest, re.S)
    cells = ["|".join(c.strip() for c in re.split(r"<[^>]+>", r) if c.strip()) for r in rows]
    assert cells[0] == "Choice|Party|Election Day|Absentee/Mail|Total|%"
    assert cells[1] == "Ann Able|100|8|108|67.50%"
    assert "Ballots cast|150|10|160" in cells


# Reconciliation --------------------------------------------------------------------------------------


def test_reconciliation_per_precinct_and_method(create_election, create_voters, as_role, csrf_app, run):
    """Check-ins against ballots cast, per precinct and method: provisional ballots count once
    accepted; every difference is marked; printable, CSV, linked from the certification page."""
    from tests.desk import Desk

    made = create_election(status="open", precincts=1, methods=("election_day", "absentee", "provisional"))
    precinct = made.precincts[0]
    voters = create_voters(count=6, precinct=precinct)
    clerk = Desk(csrf_app, as_role("clerk").user)
    for voter_id, how in zip(voters, ["in_person"] * 3 + ["mail", "provisional", "provisional"], strict=True):
        assert clerk.check_in(made.election.id, voter_id, how).status_code == 200
    manager = Desk(csrf_app, as_role("manager").user)

    async def provisional_ids():
        async with reading() as db:
            rows = await db.execute(
                text("SELECT id FROM check_in WHERE method = 'provisional' ORDER BY id"),
            )
            return [r[0] for r in rows]

    first, second = run(provisional_ids())
    for check_in, decision, reason in (
        (first, "accept", "Registration confirmed"),
        (second, "reject", "Wrong precinct"),
    ):
        answer = manager.post(
            f"/elections/{made.election.id}/provisionals/decide",
            {"check_in": [str(check_in)], "decision": decision, "reason": reason},
        )
        assert answer.status_code == 200, answer.text
    # Election day: 3 checked in, 4 ballots (one too many); mail: 1 and 1; provisional: none entered.
    entering = as_role("clerk")
    assert entering.post(entry(made, precinct, "election_day"), figures(made, 3, 1)).status_code == 303
    assert entering.post(entry(made, precinct, "absentee"), figures(made, 1, 0)).status_code == 303

    observer = as_role("observer")
    base = f"/elections/{made.election.id}/reports"
    page = observer.get(f"{base}/reconciliation").get_data(as_text=True)
    rows = re.findall(
        r"<tr[^>]*>(.*?)</tr>",
        page.split('class="table table-sm table-bordered report-table reconciliation"')[1],
        re.S,
    )
    cells = ["|".join(c.strip() for c in re.split(r"<[^>]+>", r) if c.strip()) for r in rows]
    assert cells[1] == f"{precinct.code}|Election Day|3|3|4|▲|+1"
    assert cells[2] == "Absentee/Mail|1|1|1|0"
    assert cells[3] == "Provisional|2|0|1|1|—|no returns"  # one accepted, one rejected
    assert page.count('class="reconcile-differs"') == 1
    assert "<strong>1</strong> of 3 rows differ · 1 without returns yet." in page
    lines = list(csv.reader(io.StringIO(observer.get(f"{base}/reconciliation.csv").get_data(as_text=True))))
    assert lines[0][2:] == [
        "method",
        "checked_in",
        "provisional_pending",
        "provisional_rejected",
        "counted_check_ins",
        "ballots_cast",
        "difference",
    ]
    assert lines[1][2:] == ["election_day", "3", "0", "0", "3", "4", "1"]
    assert lines[3][2:] == ["provisional", "2", "0", "1", "1", "", ""]
    turnout = list(csv.reader(io.StringIO(observer.get(f"{base}/turnout.csv").get_data(as_text=True))))
    assert turnout[0][7:10] == ["provisional_accepted", "provisional_pending", "provisional_rejected"]
    assert turnout[1][7:10] == ["1", "0", "1"]
    assert turnout[1][10] == "5", "turnout leaves the rejected provisional ballot out, as the live panels do"
    certification = observer.get(f"{base}/certification").get_data(as_text=True)
    assert f'href="/elections/{made.election.id}/reports/reconciliation"' in certification


def test_a_contest_not_on_the_precincts_ballot_takes_no_return(create_election, db_call, as_role, run):
    """A contest on precinct A's ballot only: figures for it sent for precinct B, in any method, are
    refused by the check and never stored with B's return."""
    from portal.contests.queries import create_contest

    made = create_election(status="draft", precincts=2, methods=("election_day", "absentee"))
    first, second = made.precincts
    local = db_call(
        create_contest,
        actor=made.actor,
        election_id=made.election.id,
        office_title="Ward 1 Council",
        vote_for=1,
        is_measure=False,
        precinct_ids=[first.id],
    )

    async def open_it():
        async with transaction() as db:
            await db.execute(
                text("UPDATE election SET status = 'open' WHERE id = :e"), {"e": made.election.id}
            )

    run(open_it())
    clerk = as_role("clerk")
    stray = {f"c{local.id}_ballots_cast": "5", f"c{local.id}_undervotes": "5"}
    response = clerk.client.post(
        entry(made, second, "absentee", f"/check/{local.id}"),
        data=stray,
        headers={**HX, "X-CSRFToken": clerk.token(entry(made, second))},
    )
    assert response.status_code == 404
    assert "is not on the precinct&#39;s ballot" in response.get_data(as_text=True)
    page = clerk.get(entry(made, second, "absentee")).get_data(as_text=True)
    assert "Ward 1 Council" not in page
    assert clerk.post(entry(made, second, "absentee"), {**figures(made, 1, 1), **stray}).status_code == 303

    async def contests_stored():
        async with reading() as db:
            rows = await db.execute(
                select(PrecinctReturn.contest_id).where(PrecinctReturn.precinct_id == second.id)
            )
            return sorted(r[0] for r in rows)

    assert run(contests_stored()) == [made.contests[0].id]


def test_an_election_counting_one_figure_counts_every_ballot_in_it(
    create_election, create_voters, as_role, csrf_app
):
    """Counting Election Day only (as migration 0011 leaves an election that had returns): early and
    mail check-ins belong to that one figure in the returns check and the reconciliation."""
    from tests.desk import Desk

    made = create_election(status="open", precincts=1)
    precinct = made.precincts[0]
    voters = create_voters(count=3, precinct=precinct)
    clerk = Desk(csrf_app, as_role("clerk").user)
    for voter_id, how in zip(voters, ("in_person", "early", "mail"), strict=True):
        assert clerk.check_in(made.election.id, voter_id, how).status_code == 200
    entering = as_role("clerk")
    page = entering.get(entry(made, precinct)).get_data(as_text=True)
    assert "Election Day: 3 voters checked in" in page
    assert entering.post(entry(made, precinct), figures(made, 2, 1)).status_code == 303
    body = (
        as_role("observer")
        .get(f"/elections/{made.election.id}/reports/reconciliation")
        .get_data(as_text=True)
    )
    assert "<strong>0</strong> of 1 rows differ." in body


def test_a_stale_form_cannot_undo_a_change_of_methods(night, as_role, run):
    first, second = as_role("manager"), as_role("manager")
    url = f"/elections/{night.election.id}/edit"
    stale = second.get(url).get_data(as_text=True)
    version = re.search(r'name="version" type="hidden" value="(\d+)"', stale).group(1)
    data = {"name": night.election.name, "election_date": "2026-11-03", "kind": "general", "version": version}
    assert first.post(url, {**data, "methods": ["election_day", "early", "absentee"]}).status_code == 303
    response = second.post(url, {**data, "name": "Renamed", "methods": ["election_day", "absentee"]})
    assert response.status_code == 409 and "changed by" in response.get_data(as_text=True)

    async def counted():
        async with reading() as db:
            rows = await db.scalars(
                select(CountingGroup.method).where(CountingGroup.election_id == night.election.id)
            )
            return sorted(rows.all())

    assert run(counted()) == ["absentee", "early", "election_day"]


def test_a_return_by_method_across_a_database_restart(night, as_role, run, database_url):
    """Every connection is cut and new ones are refused (a restart in progress): the save answers 503
    "Nothing was saved" and stores nothing; once the database is back the same form saves."""
    from tests.test_resilience import _wait_until_gone, connections_refused, terminate_all_but_admin

    clerk = as_role("clerk")
    precinct = night.precincts[0]
    url = entry(night, precinct, "absentee")
    token = clerk.token(url)  # the page was loaded before the restart
    form = {**figures(night, 8, 2), "csrf_token": token}
    with connections_refused(database_url):
        _wait_until_gone(database_url, terminate_all_but_admin(database_url))
        response = clerk.client.post(url, data=form)
        assert response.status_code == 503 and "Nothing was saved" in response.get_data(as_text=True)
    assert stored(run, night) == []
    assert clerk.client.post(url, data=form).status_code == 303
    assert stored(run, night) == [(precinct.id, "absentee", 1, 10, "entered")]
