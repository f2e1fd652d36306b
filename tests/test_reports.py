"""Standard exports: NIST SP 1500-100 JSON (validated against the official schema) and CSV."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy import text

from portal.db import transaction

SCHEMA_NAME = "NIST_V2_election_results_reporting.json"
SHARED_SCHEMA = Path(__file__).resolve().parent.parent.parent / "shared" / "standards" / SCHEMA_NAME
COPIED_SCHEMA = Path(__file__).resolve().parent / "standards" / SCHEMA_NAME  # for checkouts without shared/


@pytest.fixture(scope="module")
def validator():
    schema = SHARED_SCHEMA if SHARED_SCHEMA.exists() else COPIED_SCHEMA
    return jsonschema.Draft4Validator(json.loads(schema.read_text()))


def test_the_copied_schema_is_the_shared_one():
    if not SHARED_SCHEMA.exists():
        pytest.skip("shared/ is not beside this checkout")
    assert COPIED_SCHEMA.read_bytes() == SHARED_SCHEMA.read_bytes(), (
        "update tests/standards from shared/standards"
    )


def _give_party(db_call, made, candidate, party) -> None:
    from portal.contests.queries import update_candidate

    db_call(
        update_candidate,
        actor=made.actor,
        election_id=made.election.id,
        candidate_id=candidate.id,
        seen_version=candidate.version,
        code=candidate.code,
        ballot_name=candidate.ballot_name,
        party_id=party.id,
        status=candidate.status,
        write_in=candidate.write_in,
    )


@pytest.fixture
def reported(create_election, create_party, client_as, db_call, run):
    """An election with a candidate contest (a party, a write-in, a withdrawn candidate), a measure,
    and returns from one of its two precincts."""
    from portal.contests.queries import create_contest

    made = create_election(
        status="open", precincts=2, contests=[("Mayor", 1, ["Ann Able", "=SUM(A1)", "Wes Write"])]
    )
    party = create_party(name="Forward", abbreviation="FWD", colour="#12ab34")
    ann, formula, writein = made.candidates
    _give_party(db_call, made, ann, party)

    async def adjust():
        async with transaction() as db:
            await db.execute(
                text("UPDATE election SET status = 'draft' WHERE id = :e"), {"e": made.election.id}
            )
        async with transaction() as db:
            await create_contest(
                db,
                actor=made.actor,
                election_id=made.election.id,
                office_title="Question 1",
                vote_for=1,
                is_measure=True,
                precinct_ids=None,
            )
            await db.execute(text("UPDATE candidate SET write_in = true WHERE id = :c"), {"c": writein.id})
            await db.execute(
                text("UPDATE candidate SET status = 'withdrawn' WHERE id = :c"), {"c": formula.id}
            )
            await db.execute(
                text("UPDATE election SET status = 'open', kind = 'organisational' WHERE id = :e"),
                {"e": made.election.id},
            )

    run(adjust())
    clerk = client_as("clerk")
    page = clerk.get(f"/elections/{made.election.id}/returns/{made.precincts[0].id}").text
    import re

    names = re.findall(r'name="(c\d+_\w+)"', page)
    values = {}
    for name in names:
        values[name] = "0"
    mayor, question = made.contests[0].id, max(int(n.split("_")[0][1:]) for n in names)
    values.update(
        {
            f"c{mayor}_{ann.id}": "60",
            f"c{mayor}_{writein.id}": "5",
            f"c{mayor}_overvotes": "1",
            f"c{mayor}_undervotes": "4",
            f"c{mayor}_ballots_cast": "70",
        }
    )
    yes, no = [n for n in names if n.startswith(f"c{question}_") and n.split("_")[1].isdigit()]
    values.update({yes: "40", no: "25", f"c{question}_undervotes": "5", f"c{question}_ballots_cast": "70"})
    assert (
        clerk.post(f"/elections/{made.election.id}/returns/{made.precincts[0].id}", data=values).status_code
        == 303
    )
    return made


def test_nist_export_validates_against_the_official_schema(reported, client_as, validator):
    response = client_as("observer").get(f"/elections/{reported.election.id}/reports/results.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    report = response.get_json()
    errors = [f"{list(e.path)}: {e.message[:200]}" for e in validator.iter_errors(report)]
    assert errors == []
    assert report["Status"] == "unofficial-partial" and report["Format"] == "precinct-level"
    election = report["Election"][0]
    assert election["Type"] == "other" and election["OtherType"] == "organisational"
    mayor, question = election["Contest"]
    assert mayor["@type"] == "ElectionResults.CandidateContest" and mayor["VotesAllowed"] == 1
    assert question["@type"] == "ElectionResults.BallotMeasureContest"
    assert (mayor["SubUnitsReported"], mayor["TotalSubUnits"]) == (1, 2)
    ann = mayor["ContestSelection"][0]
    # The election counts election-day ballots only: per unit, that method's count, then the total.
    assert ann["VoteCounts"][:2] == [
        {"@type": "ElectionResults.VoteCounts", "GpUnitId": "gpu-jurisdiction", "Type": t, "Count": 60}
        for t in ("election-day", "total")
    ]
    assert mayor["ContestSelection"][2]["IsWriteIn"] is True
    assert mayor["OtherCounts"][0]["Overvotes"] == 1 and mayor["OtherCounts"][0]["Undervotes"] == 4
    parties = {p["Abbreviation"]["Text"][0]["Content"]: p["Color"] for p in report["Party"]}
    assert parties == {"FWD": "12ab34"}
    assert {c["BallotName"]["Text"][0]["Content"]: c.get("PreElectionStatus") for c in election["Candidate"]}[
        "=SUM(A1)"
    ] == "withdrawn"
    units = {u["@id"]: u for u in report["GpUnit"]}
    assert units["gpu-jurisdiction"]["Type"] == "county" and len(units) == 3
    assert [(b["Type"], b["BallotsCast"]) for b in election["BallotCounts"][:2]] == [
        ("election-day", 70),
        ("total", 70),
    ]


def test_certified_before_records_were_kept_still_reproducible(reported, client_as, app, validator):
    """An election certified before migration 0007 has no frozen record: its exports are built from
    the tables (locked by certification) and dated by the election's last change."""

    async def certify():
        async with transaction() as db:
            await db.execute(
                text("UPDATE election SET status = 'certified' WHERE id = :e"), {"e": reported.election.id}
            )

    from portal import aio

    with app.app_context():
        aio.run(certify())
    observer = client_as("observer")
    base = f"/elections/{reported.election.id}/reports"
    first_json, second_json = (
        observer.get(f"{base}/results.json").data,
        observer.get(f"{base}/results.json").data,
    )
    assert first_json == second_json
    for name in ("canvass", "summary", "turnout"):
        assert observer.get(f"{base}/{name}.csv").data == observer.get(f"{base}/{name}.csv").data, name
    report = json.loads(first_json)
    assert report["Status"] == "certified" and list(validator.iter_errors(report)) == []
    # Certified before methods too: it prints in format 1's shape (no method column, totals only).
    header = observer.get(f"{base}/canvass.csv").get_data(as_text=True).splitlines()[0]
    assert header == "precinct,precinct_name,contest,choice,party,votes,status"
    counts = report["Election"][0]["Contest"][0]["ContestSelection"][0]["VoteCounts"]
    assert {c["Type"] for c in counts} == {"total"}
    runner = app.test_cli_runner()
    assert runner.invoke(args=["export-results", str(reported.election.id)]).output.encode() == first_json


def test_canvass_csv_is_formula_safe(reported, client_as):
    body = (
        client_as("observer")
        .get(f"/elections/{reported.election.id}/reports/canvass.csv")
        .get_data(as_text=True)
    )
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == ["precinct", "precinct_name", "contest", "method", "choice", "party", "votes", "status"]
    choices = [row[4] for row in rows[1:]]
    assert "'=SUM(A1)" in choices and "=SUM(A1)" not in choices
    assert rows[1][3:] == ["election_day", "Ann Able", "FWD", "60", "entered"]
    assert [row[3] for row in rows if row[4] == "Ballots cast" and row[6] == "70"] == [
        "election_day",
        "total",
    ] * 2  # two contests


def test_cli_export_unknown_election(app):
    result = app.test_cli_runner().invoke(args=["export-results", "9999"])
    assert result.exit_code != 0 and "no election 9999" in result.output


REPORT_NAMES = ("summary", "canvass", "turnout", "certification")


@pytest.mark.parametrize("role", ["observer", "clerk", "manager", "admin"])
def test_every_report_for_every_role(reported, client_as, role):
    client = client_as(role)
    index = client.get(f"/elections/{reported.election.id}/reports").text
    for name in REPORT_NAMES:
        assert f"/reports/{name}" in index
    audit = f"/audit?entity=election&amp;q={reported.election.id}"
    if role in ("admin", "manager"):
        assert audit in index and client.get(audit.replace("&amp;", "&")).status_code == 200
    else:  # the audit log holds voters' personal data: not for observers or clerks
        assert audit not in index and client.get("/audit").status_code == 403
        page = client.get(f"/elections/{reported.election.id}/reports/{name}")
        assert page.status_code == 200, name
        assert "UNOFFICIAL" in page.text and "Printed" in page.text
        assert "/edit" not in page.text and "hx-post" not in page.text  # reports read, nobody edits


def test_report_figures(reported, client_as):
    client = client_as("observer")
    base = f"/elections/{reported.election.id}/reports"
    summary = client.get(f"{base}/summary").text
    assert "Ann Able" in summary and ">60<" in summary and ">92.31%<" in summary  # 60 of 65 candidate votes
    canvass = client.get(f"{base}/canvass").text
    assert reported.precincts[0].code in canvass and "—" in canvass  # the other precinct has not reported
    certification = client.get(f"{base}/certification").text
    assert (
        certification.count('class="signature-line"') == 3
        and "Chair, County Board of Elections" in certification
    )
    assert "0 / 2 verified" in certification


def _table_rows(table: str) -> list[list[str]]:
    """A table's rows as the text of their cells (tags dropped, entities kept as printed)."""
    import html
    import re

    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    ]


def test_the_certification_tables_have_headers_and_parties(reported, client_as):
    """Each contest of the certification is a table with column headers, the candidate's party and
    the percentages written as everywhere else (a measure has choices and no party column)."""
    import re

    page = client_as("observer").get(f"/elections/{reported.election.id}/reports/certification").text
    tables = re.findall(r'<table class="[^"]*certification-contest".*?</table>', page, re.S)
    assert len(tables) == 2
    mayor, question = (_table_rows(t) for t in tables)
    assert mayor[0] == ["Mayor · vote for 1"]  # the title row: printed again on every page it runs onto
    assert mayor[1] == ["Candidate", "Party", "Votes", "Percent"]
    assert mayor[2] == ["Ann Able", "Forward", "60", "92.31%"]
    assert mayor[3] == ["=SUM(A1) (withdrawn)", "", "0", "0.00%"]
    assert mayor[4] == ["Wes Write (write-in)", "", "5", "7.69%"]
    assert mayor[-1] == ["Ballots cast", "70", ""]
    assert question[0] == ["Question 1"] and question[1] == ["Choice", "Votes", "Percent"]
    assert question[2:4] == [["Yes", "40", "61.54%"], ["No", "25", "38.46%"]]


def test_a_share_of_nothing_prints_a_dash(create_election, client_as):
    """No returns yet: the summary and the certification say "—", not "0.00%"; the CSV keeps its
    plain zero (its form is fixed: a certified election's CSV is the same bytes forever)."""
    made = create_election(status="open", precincts=1)
    client = client_as("observer")
    base = f"/elections/{made.election.id}/reports"
    for name in ("summary", "certification"):
        page = client.get(f"{base}/{name}").text
        assert "0.00%" not in page, name
        assert page.count('font-monospace">—</td>') == 2, name  # Ann Able's and Bob Baker's share
    assert "Mayor,total,Ann Able,,0,0.00" in client.get(f"{base}/summary.csv").text


def test_wide_contests_are_split(create_election, client_as):
    made = create_election(
        status="open", precincts=1, contests=[("Council", 3, [f"Person {n}" for n in range(19)])]
    )
    canvass = client_as("observer").get(f"/elections/{made.election.id}/reports/canvass").text
    assert "part 1 of 3" in canvass and "part 3 of 3" in canvass
    assert canvass.count('class="table table-sm table-bordered report-table canvass-table"') == 3


@pytest.mark.browser
def test_reports_print_to_pdf(reported, live_server, browser, create_user, tmp_path):
    import shutil
    import subprocess

    from tests.browser import first_page_png

    if not shutil.which("pdftotext"):
        pytest.skip("poppler-utils is not installed")
    user = create_user("observer")
    page = browser.new_page()
    page.goto(f"{live_server.url}/login")
    page.fill("#username", user.username)
    page.fill("#password", "correct horse battery staple")
    page.click("button.w-100")
    page.wait_for_url(f"{live_server.url}/")
    for name in REPORT_NAMES:
        page.goto(f"{live_server.url}/elections/{reported.election.id}/reports/{name}")
        page.emulate_media(media="print")
        for paper in ("A4", "Letter"):
            pdf = tmp_path / f"{name}-{paper}.pdf"
            page.pdf(path=str(pdf), format=paper, print_background=True)
            content = subprocess.run(
                ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True
            ).stdout
            assert "UNOFFICIAL" in content and reported.election.name in content, (name, paper)
            assert (
                "Page 1 of" in content
                and "Sign out" not in content
                and "Print" not in content.split("Printed")[0]
            )
            first_page_png(pdf, f"report-{name}-{paper}")
        assert "Ann Able" in content or name == "turnout"


def test_summary_and_turnout_csv(reported, client_as):
    client = client_as("observer")
    base = f"/elections/{reported.election.id}/reports"
    summary = list(csv.reader(io.StringIO(client.get(f"{base}/summary.csv").get_data(as_text=True))))
    assert summary[0] == ["contest", "method", "choice", "party", "votes", "percent"]
    assert ["Mayor", "election_day", "Ann Able", "FWD", "60", ""] in summary
    assert ["Mayor", "total", "Ann Able", "FWD", "60", "92.31"] in summary
    assert ["Mayor", "total", "'=SUM(A1)", "", "0", "0.00"] in summary
    turnout = list(csv.reader(io.StringIO(client.get(f"{base}/turnout.csv").get_data(as_text=True))))
    assert turnout[0][:3] == ["precinct", "precinct_name", "registered"] and len(turnout) == 3
    assert client.get(f"{base}/voters.csv").status_code == 404


def test_running_header_stylesheet_escapes_the_election_name(create_election, client_as):
    made = create_election(name='The "Big" \\ Vote\nNext', status="open", precincts=1)
    css = client_as("observer").get(f"/elections/{made.election.id}/reports/summary/page.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    # Every character outside letters, digits and plain punctuation is a six-digit CSS hex escape.
    assert 'content: "Summary of results · The \\000022Big\\000022 \\00005c Vote\\00000aNext"' in css.text
    assert "UNOFFICIAL · printed" in css.text
    assert (
        client_as("observer").get(f"/elections/{made.election.id}/reports/nope/page.css").status_code == 404
    )


@pytest.mark.browser
def test_an_election_name_cannot_restyle_the_printed_report(
    create_election, live_server, browser, create_user, tmp_path
):
    """The outside review's probe: a form feed, then `}} body{display:none}` in the election name
    blanked the printed summary in Chromium. It must print whole, the name in its header."""
    import shutil
    import subprocess

    from tests.browser import sign_in

    if not shutil.which("pdftotext"):
        pytest.skip("poppler-utils is not installed")
    name = "Gen\x0c}} body{display:none} @import 'x'; \\\" Vote"
    made = create_election(name=name, status="open", precincts=1)
    page = browser.new_page()
    sign_in(page, live_server.url, create_user("observer").username)
    page.goto(f"{live_server.url}/elections/{made.election.id}/reports/summary")
    page.emulate_media(media="print")
    assert page.evaluate("getComputedStyle(document.body).display") != "none"
    pdf = tmp_path / "summary.pdf"
    page.pdf(path=str(pdf), format="A4")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    assert "Ann Able" in text and "Mayor" in text  # the report printed
    assert "body{display:none}" in text  # the name is printed as text in the running header


@pytest.mark.browser
def test_every_printed_page_has_the_running_header(
    create_election, live_server, browser, create_user, tmp_path
):
    import shutil
    import subprocess

    if not shutil.which("pdftotext"):
        pytest.skip("poppler-utils is not installed")
    made = create_election(status="open", precincts=60)
    user = create_user("observer")
    page = browser.new_page()
    page.goto(f"{live_server.url}/login")
    page.fill("#username", user.username)
    page.fill("#password", "correct horse battery staple")
    page.click("button.w-100")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/elections/{made.election.id}/reports/canvass")
    page.emulate_media(media="print")
    pdf = tmp_path / "canvass.pdf"
    page.pdf(path=str(pdf), format="A4")
    pages = int(
        subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True)
        .stdout.split("Pages:")[1]
        .split()[0]
    )
    assert pages >= 2
    texts = []
    for number in range(1, pages + 1):
        text = subprocess.run(
            ["pdftotext", "-f", str(number), "-l", str(number), str(pdf), "-"], capture_output=True, text=True
        ).stdout
        assert "UNOFFICIAL · printed" in text and f"Page {number} of {pages}" in text, number
        assert "Statement of votes cast by precinct" in text
        texts.append(text)
    whole = "\n".join(texts)
    assert whole.count("Total") == 1, "the totals row prints once, after the last precinct"
    assert whole.rindex("Total") > max(whole.index(p.code) for p in made.precincts)
    assert all(whole.count(p.code) == 1 for p in made.precincts), "every precinct prints once"


@pytest.fixture
def certified(create_election, create_party, create_voters, client_as, db_call):
    """An election certified through the real lifecycle: voters on the roll, check-ins by two methods,
    returns entered by one clerk and verified by another in both precincts, closed, then certified."""
    from tests.conftest import HX, move_election

    made = create_election(status="open", precincts=2)
    party = create_party(name="Forward", abbreviation="FWD", colour="#12ab34")
    ann = made.candidates[0]
    _give_party(db_call, made, ann, party)
    voters = [create_voters(count=4, precinct=p) for p in made.precincts]
    clerk, checker, manager = client_as("clerk"), client_as("clerk"), client_as("manager")
    for voter_id, method in zip(voters[0][:3], ("in_person", "in_person", "mail"), strict=True):
        assert (
            clerk.post(
                f"/check-in/{made.election.id}/voters/{voter_id}", data={"method": method}, headers=HX
            ).status_code
            == 200
        )
    contest = made.contests[0]
    ann, bob = made.candidates
    for precinct, (a, b) in zip(made.precincts, ((2, 1), (0, 0)), strict=True):
        base = f"/elections/{made.election.id}/returns/{precinct.id}"
        ballots = a + b
        data = {
            f"c{contest.id}_{ann.id}": a,
            f"c{contest.id}_{bob.id}": b,
            f"c{contest.id}_overvotes": 0,
            f"c{contest.id}_undervotes": 0,
            f"c{contest.id}_ballots_cast": ballots,
        }
        assert clerk.post(base, data={k: str(v) for k, v in data.items()}).status_code == 303
        checker.post(f"{base}/verify", data={"mode": "confirm", f"revision_{contest.id}": "1"})
    for to in ("closed", "certified"):
        response = move_election(manager, made.election.id, to)
        assert response.status_code == 200, response.text
    made.party = party
    made.voters = voters
    return made


def _report_bodies(client, election_id: int) -> dict[str, bytes]:
    """Every download and every report page of an election; the pages without their print time."""
    import re

    base = f"/elections/{election_id}/reports"
    found = {"results.json": client.get(f"{base}/results.json").data}
    for name in ("canvass", "summary", "turnout"):
        found[f"{name}.csv"] = client.get(f"{base}/{name}.csv").data
    for name in REPORT_NAMES:
        page = client.get(f"{base}/{name}").get_data(as_text=True)
        body = page.split('<div class="report">', 1)[1].split("</main>", 1)[0]
        body = re.sub(r"Printed \d{4}-\d\d-\d\d \d\d:\d\d E[SD]T", "Printed …", body)
        # The audit head printed is the chain's as of printing (it grows with every write).
        body = re.sub(r"\d+:[0-9a-f]{64}", "HEAD", body)
        found[name] = body.encode()
    return found


def test_certified_reports_do_not_change_when_the_world_does(
    certified, client_as, create_voters, db_call, run, validator, app
):
    """The roll grows, a precinct and a party are renamed: the certified reports stay the same bytes
    (the canvass is frozen at certification, registration when the polls closed)."""
    from portal.parties.queries import update_party
    from portal.precincts.queries import update_precinct

    observer = client_as("observer")
    before = _report_bodies(observer, certified.election.id)
    report = json.loads(before["results.json"])
    assert report["Status"] == "certified" and list(validator.iter_errors(report)) == []
    units = {u["@id"]: u for u in report["GpUnit"]}
    assert units["gpu-jurisdiction"]["VotersRegistered"] == 8
    assert units["gpu-jurisdiction"]["VotersParticipated"] == 3
    turnout = before["turnout.csv"].decode().splitlines()
    # registered, in person, early, mail, provisional, provisional accepted/pending/rejected, total, %
    assert turnout[1].split(",")[2:] == ["4", "2", "0", "1", "0", "0", "0", "0", "3", "75.0"]

    create_voters(count=5, precinct=certified.precincts[0])
    precinct = certified.precincts[0]
    db_call(
        update_precinct,
        actor=certified.actor,
        precinct_id=precinct.id,
        seen_version=precinct.version,
        data={"code": "Z-999", "name": "Renamed Hall", "polling_place": "Elsewhere"},
    )
    party = certified.party
    db_call(
        update_party,
        actor=certified.actor,
        party_id=party.id,
        seen_version=party.version,
        data={"name": "Onward", "abbreviation": "ONW", "colour": "#000000"},
    )
    after = _report_bodies(observer, certified.election.id)
    for name, body in before.items():
        assert after[name] == body, name
    assert _report_bodies(client_as("observer"), certified.election.id) == before  # nothing per session
    cli = app.test_cli_runner().invoke(args=["export-results", str(certified.election.id)])
    assert cli.exit_code == 0 and cli.output.encode() == before["results.json"]
    assert "Renamed Hall" in client_as("observer").get("/precincts?q=Z-999").text  # the rename did happen


def test_certification_freezes_the_canvass_it_audits(certified, app, run):
    """The certifying transaction stores the canvass with its SHA-256 and audits it; the record
    cannot be changed; `audit verify` recomputes it and fails if it was tampered with."""
    from portal import aio
    from portal.db import reading
    from portal.models import AuditEvent, CertifiedResult
    from portal.reports.queries import canonical_json

    async def stored():
        async with reading() as db:
            result = await db.get(CertifiedResult, certified.election.id)
            event = await db.scalar(
                select(AuditEvent).where(
                    AuditEvent.entity == "certified_result", AuditEvent.action == "certify"
                )
            )
            return result, event

    from sqlalchemy import select

    result, event = run(stored())
    assert hashlib.sha256(canonical_json(result.record)).hexdigest() == result.sha256
    assert event.after["sha256"] == result.sha256 and event.entity_id == str(certified.election.id)
    assert event.after["precincts"] == 2 and event.after["returns"] == 2
    assert result.record["election"]["status"] == "certified"
    # The chain's head as it stood is inside the hashed record: the event before "certify".
    assert result.record["audit_head"]["event"] == event.id - 1
    runner = app.test_cli_runner()
    verified = runner.invoke(args=["audit", "verify"])
    assert verified.exit_code == 0 and "audit chain intact" in verified.output

    async def try_update():
        async with transaction() as db:
            await db.execute(text("UPDATE certified_result SET sha256 = 'x'"))

    with pytest.raises(Exception, match="certified_result is frozen"):
        run(try_update())

    async def tamper():  # what only a superuser could do: switch the trigger off and edit a figure
        async with transaction() as db:
            await db.execute(text("ALTER TABLE certified_result DISABLE TRIGGER certified_result_frozen"))
            await db.execute(
                text(
                    "UPDATE certified_result SET record = jsonb_set(record, '{returns,0,3}', '999')"
                    " WHERE election_id = :e"
                ),
                {"e": certified.election.id},
            )
            await db.execute(text("ALTER TABLE certified_result ENABLE TRIGGER certified_result_frozen"))

    with app.app_context():
        aio.run(tamper())
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1
    assert f"election {certified.election.id}: certified record does not match its SHA-256" in broken.output


def test_certifying_changes_no_figure(create_election, client_as, run):
    """The NIST export of a closed election and of the same election certified differ only in their
    status and GeneratedDate: freezing the canvass changes no figure or name."""
    from tests.conftest import move_election

    made = create_election(status="open", precincts=3, contests=[("Mayor", 1, ["Ann Able", "Bob Baker"])])
    clerk, checker, manager = client_as("clerk"), client_as("clerk"), client_as("manager")
    contest = made.contests[0]
    ann, bob = made.candidates
    for n, precinct in enumerate(made.precincts):
        base = f"/elections/{made.election.id}/returns/{precinct.id}"
        data = {
            f"c{contest.id}_{ann.id}": str(10 + n),
            f"c{contest.id}_{bob.id}": str(7),
            f"c{contest.id}_overvotes": "1",
            f"c{contest.id}_undervotes": "2",
            f"c{contest.id}_ballots_cast": str(20 + n),
        }
        assert clerk.post(base, data=data).status_code == 303
        checker.post(f"{base}/verify", data={"mode": "confirm", f"revision_{contest.id}": "1"})
    url = f"/elections/{made.election.id}/reports/results.json"
    move_election(manager, made.election.id, "closed")
    closed = client_as("observer").get(url).get_json()
    move_election(manager, made.election.id, "certified")
    certified = client_as("observer").get(url).get_json()
    assert (closed["Status"], certified["Status"]) == ("unofficial-complete", "certified")
    for report in (closed, certified):
        del report["Status"], report["GeneratedDate"]
    assert certified == closed
    assert certified["Election"][0]["BallotCounts"][0]["BallotsCast"] == 63


def test_turnout_counts_voters_outside_the_elections_precincts(create_election, create_voters, client_as):
    """A voter registered outside the election's precincts votes provisionally: the turnout report
    shows them on their own row and in the totals, as the election page's turnout does."""
    from tests.conftest import HX

    made = create_election(status="open", precincts=1)
    inside = create_voters(count=2, precinct=made.precincts[0])
    outside = create_voters(count=1)
    clerk = client_as("clerk")
    for voter_id, method in ((inside[0], "in_person"), (outside[0], "provisional")):
        response = clerk.post(
            f"/check-in/{made.election.id}/voters/{voter_id}", data={"method": method}, headers=HX
        )
        assert response.status_code == 200, response.text
    base = f"/elections/{made.election.id}/reports"
    observer = client_as("observer")
    rows = list(csv.reader(io.StringIO(observer.get(f"{base}/turnout.csv").get_data(as_text=True))))
    assert rows[0][7:10] == ["provisional_accepted", "provisional_pending", "provisional_rejected"]
    assert rows[1][2:] == ["2", "1", "0", "0", "0", "0", "0", "0", "1", "50.0"]
    outside_row = [
        "",
        "Voters outside the election's precincts",
        "",
        "0",
        "0",
        "0",
        "1",
        "0",
        "1",
        "0",
        "1",
        "",
    ]
    assert rows[2] == outside_row
    page = observer.get(f"{base}/turnout").text
    assert "Voters outside the election's precincts" in page
    report = observer.get(f"{base}/results.json").get_json()
    units = {u["@id"]: u for u in report["GpUnit"]}
    assert units["gpu-jurisdiction"]["VotersParticipated"] == 2
    assert units[f"gpu-precinct-{made.precincts[0].id}"]["VotersParticipated"] == 1


def test_cutting_the_audit_log_after_a_certification_is_caught(certified, app, run):
    from sqlalchemy import text

    from portal.db import transaction

    assert app.test_cli_runner().invoke(args=["audit", "verify"]).exit_code == 0

    async def cut():
        async with transaction() as db:
            await db.execute(text("SET LOCAL session_replication_role = replica"))
            head = await db.scalar(text("SELECT (record->'audit_head'->>'event')::int FROM certified_result"))
            await db.execute(text("DELETE FROM audit_event WHERE id >= :id"), {"id": head})

    run(cut())
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 1 and "events were deleted" in result.output, result.output
