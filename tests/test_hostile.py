"""Hostile input, the way a browser sends it (CSRF on): every form field and query parameter the
portal's pages offer, and every id in a path, gets a corpus of markup, formulas, NUL and control
characters, huge and negative numbers, Unicode digits, right-to-left marks, 10 KB strings and
impossible dates. No answer may be 500 or above, and a refused request may change nothing."""

from __future__ import annotations

import html.parser
import re

import pytest
from sqlalchemy import text

from portal.db import reading, transaction
from portal.models import Base
from tests.conftest import TEST_PASSWORD

CORPUS = [
    "<script>alert(1)</script>",
    '=HYPERLINK("http://evil.example","x")',
    "+SUM(1,1)",
    "@SUM(1,1)",
    "-1",
    "a\x00b",
    "\x00",
    "\x07\x1b[31m\x7f",
    "\u202egnp.exe",
    "x" * 10_240,
    "²",
    "１２",
    "1.5",
    "1e9",
    "99999999999999999999999",
    "2147483648",
    "9223372036854775808",
    "-2147483649",
    "9999-12-31",
    "0000-00-00",
    "2026-02-30",
    "' OR '1'='1",
    "%00",
    "",
]
PATH_IDS = ["2147483648", "9223372036854775808", "99999999999999999999", "１", "²", "0"]
SKIP_ENDPOINTS = {"auth.logout", "live.stream", "auth.login"}  # sign-out ends the walk; streams never end
UNCHECKED_TABLES = {"login_throttle", "user_session"}  # sign-in counters; "last seen" once a minute
VOTER_SEARCH = ("q", "precinct", "status", "party", "sort", "after", "before")
QUERY_PARAMETERS = {
    "precincts.index": ("q", "sort", "page"),
    "voters.index": VOTER_SEARCH,
    "voters.export": VOTER_SEARCH,
    "voters.import_issues": ("kind",),
    "checkin.desk": ("q", "election"),
    "provisionals.index": ("status", "precinct", "reason"),
    "audit.index": ("q", "user", "entity", "action", "since", "until", "before"),
    "audit.export": ("q", "user", "entity", "action", "since", "until"),
    "returns.verify": ("mode", "method"),
    "returns.entry": ("method",),
    "returns.check_contest": ("method",),
    "auth.login": ("next",),
}


class Forms(html.parser.HTMLParser):
    """The forms of a page: method, action, and the fields with the values the page gave them."""

    def __init__(self, page_url: str):
        super().__init__()
        self.page_url = page_url
        self.forms: list[dict] = []
        self.current: dict | None = None
        self.select: str | None = None
        self.textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            action = a.get("hx-post") or a.get("action") or self.page_url
            method = "post" if a.get("hx-post") else (a.get("method") or "get").lower()
            self.current = {"method": method, "action": action, "fields": {}}
            self.forms.append(self.current)
        elif self.current is None:
            return
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                self.current["fields"].setdefault(a["name"], None)
            elif kind != "submit":
                self.current["fields"][a["name"]] = a.get("value", "")
        elif tag == "select" and a.get("name"):
            self.select = a["name"]
            self.current["fields"][a["name"]] = None
        elif tag == "option" and self.select:
            if self.current["fields"][self.select] is None or "selected" in a:
                self.current["fields"][self.select] = a.get("value", "")
        elif tag == "textarea" and a.get("name"):
            self.textarea = a["name"]
            self.current["fields"][a["name"]] = ""

    def handle_data(self, data):
        if self.textarea and self.current is not None:
            self.current["fields"][self.textarea] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.current = None
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None


# Refusals the portal records on purpose (security events): the audit rows they write are the
# only change a refused request may leave.
RECORDED_REFUSALS = ("login_failed", "login_refused", "two_factor_enrol_failed")


def checksum(run) -> str:
    """Every stored row (but sign-in throttling and recorded refusals), as one hash."""
    tables = [t.name for t in Base.metadata.sorted_tables if t.name not in UNCHECKED_TABLES]
    refusals = ", ".join(f"'{action}'" for action in RECORDED_REFUSALS)
    sql = " UNION ALL ".join(
        f"SELECT '{name}' AS t, md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) AS h "
        f"FROM {name} x" + (f" WHERE x.action NOT IN ({refusals})" if name == "audit_event" else "")
        for name in tables
    )

    async def go():
        async with reading() as db:
            rows = (
                await db.execute(text(f"SELECT md5(string_agg(t || h, '' ORDER BY t)) FROM ({sql}) s"))
            ).all()
            return rows[0][0]

    return run(go())


@pytest.fixture
def world(app_factory, create_election, create_user, create_party, create_voters, run):
    """A bit of everything, and an admin signed in to a client with CSRF on."""
    from portal.incidents.queries import report_incident
    from portal.returns.forms import Figures
    from portal.returns.queries import precinct_ballot, save_return

    party = create_party(abbreviation="HOS")
    draft = create_election(name="Draft one", precincts=1)
    night = create_election(name="Night one", status="open", precincts=2)
    voters = create_voters([("Smith", "Ann"), ("Jones", "Bo")], precinct=night.precincts[0])
    clerk = create_user("clerk")
    other = create_user("observer")

    async def fill():
        async with transaction() as db:
            [ballot] = await precinct_ballot(db, night.election.id, night.precincts[0].id)
            ann, bob = ballot.candidates
            await save_return(
                db,
                actor=clerk,
                election_id=night.election.id,
                precinct_id=night.precincts[0].id,
                ballot=ballot,
                figures=Figures({ann.id: 6, bob.id: 4}, 10, 0, 0),
            )
            return await report_incident(
                db,
                actor=clerk,
                election_id=night.election.id,
                precinct_id=None,
                state_voter_id=None,
                body="Door",
            )

    incident = run(fill())
    # A check-in and a provisional ballot, so the void form and the adjudication screen are walked.
    from portal.checkin.queries import record_check_in

    async def check_in():
        async with transaction() as db:
            await record_check_in(
                db, actor=clerk, election_id=night.election.id, voter_id=voters[0], method="in_person"
            )
            await record_check_in(
                db, actor=clerk, election_id=night.election.id, voter_id=voters[1], method="provisional"
            )

    run(check_in())
    app = app_factory(WTF_CSRF_ENABLED=True, PROPAGATE_EXCEPTIONS=False)
    client = app.test_client()
    admin = create_user("admin")
    page = client.get("/login").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    assert (
        client.post(
            "/login", data={"username": admin.username, "password": TEST_PASSWORD, "csrf_token": token}
        ).status_code
        == 302
    )
    # An import job, through the upload form, so its pages exist.
    page = client.get("/voters/import").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    import io

    upload = io.BytesIO(
        b"voter_id,first_name,last_name,date_of_birth,address,precinct\nV1,A,B,1980-01-01,1 Main,X\n"
    )
    answer = client.post("/voters/import", data={"csrf_token": token, "file": (upload, "v.csv")})
    job = re.search(r"/voters/imports/(\d+)", answer.location or answer.text)
    ids = {
        "election_id": night.election.id,
        "draft_election_id": draft.election.id,
        "contest_id": night.contests[0].id,
        "candidate_id": night.candidates[0].id,
        "precinct_id": night.precincts[0].id,
        "party_id": party.id,
        "voter_id": voters[0],
        "user_id": other.id,
        "incident_id": incident.id,
        "job_id": int(job.group(1)) if job else 1,
    }
    return app, client, ids, draft


def concrete_urls(app, ids, draft) -> list[tuple[str, str, set[str]]]:
    """(endpoint, url, methods) for every route, with real ids (a draft election where the route
    edits a ballot, so its forms render)."""
    from flask import url_for

    found = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if rule.endpoint.endswith("static") or rule.endpoint in SKIP_ENDPOINTS:
                continue
            values = {}
            for arg in rule.arguments:
                if arg == "name":
                    values[arg] = "summary"
                else:
                    values[arg] = ids[arg]
            if (
                "contest" in rule.rule
                or "candidate" in rule.rule
                or rule.endpoint in ("elections.edit", "elections.delete")
            ):
                values = dict(values, election_id=draft.election.id)
                if "contest_id" in values:
                    values["contest_id"] = draft.contests[0].id
                if "candidate_id" in values:
                    values["candidate_id"] = draft.candidates[0].id
            found.append((rule.endpoint, url_for(rule.endpoint, **values), set(rule.methods)))
    return found


def test_hostile_input_gets_no_server_error_and_changes_nothing_when_refused(world, run):
    app, client, ids, draft = world
    sent, failures, changed = 0, [], []

    def token_from(page: str) -> str:
        found = re.search(r'"X-CSRFToken": "([^"]+)"', page) or re.search(
            r'name="csrf_token" type="hidden" value="([^"]+)"', page
        )
        return found.group(1) if found else ""

    token = token_from(client.get("/").text)

    # The stored rows as they stand, known since the last request that was refused (a refused
    # request must change nothing, so its after is the next one's before); None: to be read again.
    known: list[str | None] = [None]

    def send(method: str, url: str, data: dict | None = None, check_unchanged: bool = True):
        nonlocal sent
        before = None
        if method == "post" and check_unchanged:
            before = known[0] = known[0] or checksum(run)
        if method == "get":
            response = client.get(url, query_string=data)
        else:
            response = client.post(
                url, data={**(data or {}), "csrf_token": token}, headers={"X-CSRFToken": token}
            )
        response.get_data()  # (a streamed CSV ends its request context only when read)
        response.close()
        sent += 1
        if response.status_code >= 500:
            failures.append(
                (
                    method.upper(),
                    url,
                    {k: (v or "")[:40] for k, v in (data or {}).items()},
                    response.status_code,
                )
            )
        if response.status_code < 400:
            known[0] = None  # (an accepted request may change what is stored)
        elif before is not None:
            known[0] = checksum(run)
            if known[0] != before:
                changed.append((url, data, response.status_code))
        return response

    urls = concrete_urls(app, ids, draft)
    pages = []
    for _, url, methods in urls:
        if "GET" in methods:
            response = send("get", url)
            if response.status_code == 200 and response.mimetype == "text/html":
                pages.append((url, response.text))
        # Hostile ids in the path: 404 (or 405 for a method the route lacks), never a lookup.
        for hostile in PATH_IDS:
            bad = re.sub(r"/\d+(?=/|$|\.)", f"/{hostile}", url, count=1)
            if bad != url:
                for method in ("get", "post"):
                    if method.upper() in methods:
                        response = send(method, bad)
                        if response.status_code not in (400, 404, 405):
                            failures.append((method.upper(), bad, "path id", response.status_code))
    # The query parameters each view reads (test_every_query_parameter_read_is_walked keeps this
    # list complete), each with the whole corpus.
    for endpoint, url, _ in urls:
        for name in QUERY_PARAMETERS.get(endpoint, ()):
            for value in CORPUS:
                send("get", url, {name: value})
    # Every field of every form, one at a time.
    forms = []
    for url, page in pages:
        parser = Forms(url)
        parser.feed(page)
        forms.extend(parser.forms)
    seen = set()
    for form in forms:
        key = (form["method"], form["action"], tuple(sorted(form["fields"])))
        if key in seen or form["action"].endswith("/logout"):
            continue
        seen.add(key)
        base = {k: v for k, v in form["fields"].items() if v is not None and k != "csrf_token"}
        for field in [f for f in form["fields"] if f != "csrf_token"]:
            for value in CORPUS:
                send(form["method"], form["action"], {**base, field: value})
            if form["method"] == "post":
                send("post", form["action"], {k: v for k, v in base.items() if k != field})  # missing
    print(f"hostile-input test: {sent} requests, {len(forms)} forms, {len(seen)} distinct")
    for failure in failures[:80]:
        print("500:", failure)
    assert not failures, failures[:30]
    assert not changed, changed[:10]


def test_every_query_parameter_read_is_walked():
    """Every name a view reads from the query string is in QUERY_PARAMETERS (so the walk covers it)."""
    from pathlib import Path

    source = "\n".join(p.read_text() for p in (Path(__file__).parent.parent / "portal").rglob("*.py"))
    read = set(re.findall(r'request\.(?:args|values)\.get\("(\w+)"', source))
    read |= set(re.findall(r'args\.get\("(\w+)"', source))
    walked = {name for names in QUERY_PARAMETERS.values() for name in names}
    assert read <= walked, read - walked


# The defects of the outside review, one by one ---------------------------------------------------


def test_a_precinct_on_an_election_list_cannot_be_deleted_409(client_as, create_election, run):
    made = create_election(precincts=1)
    precinct = made.precincts[0]
    # The contest is on every precinct's ballot; take it off so only the election's list holds it.
    run_sql(run, "DELETE FROM contest_precinct")
    response = client_as("manager").post(f"/precincts/{precinct.id}/delete", data={"version": "1"})
    assert response.status_code == 409, response.text[:300]
    assert "cannot be deleted" in response.text or "used by" in response.text


def run_sql(run, sql):
    async def go():
        async with transaction() as db:
            await db.execute(text(sql))

    run(go())


def test_state_changing_forms_without_their_version_are_refused(
    client_as, create_election, create_precinct, run
):
    """Only the CSRF token (here: CSRF off, so nothing at all) must not move, delete or overwrite."""
    made = create_election(precincts=1)
    precinct = create_precinct(code="9-Z")
    manager = client_as("manager")
    before = checksum(run)
    moved = manager.post(f"/elections/{made.election.id}/status", data={})
    assert moved.status_code in (200, 400, 422) and election_status(run, made.election.id) == "draft"
    assert manager.post(f"/elections/{made.election.id}/status", data={"to": "open"}).status_code == 400
    assert manager.post(f"/precincts/{precinct.id}/delete", data={}).status_code == 400
    edit = {"code": "9-Z", "name": "Renamed", "polling_place": ""}
    assert manager.post(f"/precincts/{precinct.id}/edit", data=edit).status_code == 400
    assert manager.post(f"/precincts/{precinct.id}/edit", data={**edit, "version": "１"}).status_code == 400
    assert checksum(run) == before
    assert manager.post(f"/precincts/{precinct.id}/edit", data={**edit, "version": "1"}).status_code in (
        200,
        303,
    )


def election_status(run, election_id):
    async def go():
        async with reading() as db:
            return await db.scalar(text("SELECT status FROM election WHERE id = :id"), {"id": election_id})

    return run(go())


def test_path_ids_are_ascii_digits_within_the_column(client_as, create_election):
    made = create_election(status="open", precincts=1)
    manager = client_as("manager")
    assert manager.get(f"/elections/{made.election.id}").status_code == 200
    for bad in ("\uff11", "²", "2147483648", "0", "00000000000000000000001"):
        assert manager.get(f"/elections/{bad}").status_code == 404, bad
    assert manager.get("/voters/9223372036854775807").status_code == 404
    assert manager.get("/voters/9223372036854775808").status_code == 404
    # The probe that closed an open election through a full-width id:
    assert manager.post("/elections/\uff11/status", data={"to": "closed", "version": "1"}).status_code == 404
    assert election_status_is(manager, made.election.id, "open")


def election_status_is(client, election_id, status):
    return f"status-{status}" in client.get(f"/elections/{election_id}").text


def test_counts_take_ascii_digits_only(client_as, create_election):
    made = create_election(status="open", precincts=1, contests=[("Mayor", 1, ["Ann Able", "Bob Baker"])])
    clerk = client_as("clerk")
    contest = made.contests[0]
    ann, bob = made.candidates
    data = {
        f"c{contest.id}_{ann.id}": "²",
        f"c{contest.id}_{bob.id}": "１",
        f"c{contest.id}_overvotes": "0",
        f"c{contest.id}_undervotes": "0",
        f"c{contest.id}_ballots_cast": "1",
    }
    response = clerk.post(f"/elections/{made.election.id}/returns/{made.precincts[0].id}", data=data)
    assert response.status_code == 422 and "Digits 0-9 only" in response.text


def test_a_verification_with_a_revision_that_is_not_a_number_is_refused(
    client_as, create_election, create_user, run
):
    from portal.returns.forms import Figures
    from portal.returns.queries import precinct_ballot, save_return

    made = create_election(status="open", precincts=1, contests=[("Mayor", 1, ["Ann Able", "Bob Baker"])])
    clerk = create_user("clerk")

    async def enter():
        async with transaction() as db:
            [ballot] = await precinct_ballot(db, made.election.id, made.precincts[0].id)
            ann, bob = ballot.candidates
            figures = Figures({ann.id: 6, bob.id: 4}, 10, 0, 0)
            await save_return(
                db, actor=clerk, election_id=made.election.id, precinct_id=made.precincts[0].id,
                ballot=ballot, figures=figures,
            )  # fmt: skip

    run(enter())
    manager = client_as("manager")
    before = checksum(run)
    url = f"/elections/{made.election.id}/returns/{made.precincts[0].id}/verify"
    for bad in ("abc", "²", "1.0", "", "99999999999999999999"):
        response = manager.post(url, data={"mode": "confirm", f"revision_{made.contests[0].id}": bad})
        assert response.status_code == 400 and "which revision" in response.text, bad
    assert checksum(run) == before


def test_nul_anywhere_is_a_clear_400(client_as):
    manager = client_as("manager")
    for url in (
        "/voters?q=a%00b",
        "/voters/export.csv?q=%00",
        "/check-in?q=%00",
        "/precincts?q=%00",
        "/audit?q=%00",
        "/audit/events.csv?user=%00",
    ):
        response = manager.get(url)
        assert response.status_code == 400 and "NUL character" in response.text, url
    response = manager.post("/precincts/new", data={"code": "1-A", "name": "A\x00B"})
    assert response.status_code == 400 and "NUL character" in response.text


def test_audit_filters_at_the_edges_of_the_calendar(client_as):
    manager = client_as("manager")
    for query in ("until=9999-12-31", "since=0001-01-01&until=9999-12-31", "before=99999999999999999999999"):
        response = manager.get(f"/audit?{query}")
        assert response.status_code == 200, query
        csv = manager.get(f"/audit/events.csv?{query}")
        assert csv.status_code == 200 and csv.headers["Content-Security-Policy"], query
        assert csv.get_data(as_text=True).startswith("id,")  # read to the end: the stream closes
