"""The office's clock: times stored in UTC, shown, printed and exported in config.toml's time_zone,
and "today" in date rules is the office's day (America/New_York in config.toml)."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text, update

from portal import clock
from portal.audit.queries import AUDIT_LOCK_KEY, GENESIS_HASH, event_hash
from portal.db import transaction
from portal.models import AuditEvent, CheckIn
from tests.conftest import HX, TEST_PASSWORD, csrf_token_from

NEW_YORK = ZoneInfo("America/New_York")


def at(text_utc: str) -> datetime:
    return datetime.fromisoformat(text_utc).replace(tzinfo=UTC)


# The helpers --------------------------------------------------------------------------------------


def test_the_zone_comes_from_config_toml(app):
    with app.app_context():
        assert clock.office_zone().key == "America/New_York"


def test_the_night_the_clocks_go_back_shows_01_30_twice_told_apart(app):
    """2026-11-01 in New York: 01:00-02:00 happens twice, first as EDT then as EST."""
    with app.app_context():
        first, second = at("2026-11-01 05:30"), at("2026-11-01 06:30")
        assert clock.clock_time(first) == "01:30 EDT"
        assert clock.clock_time(second) == "01:30 EST"
        assert clock.date_time(first, seconds=True) == "2026-11-01 01:30:00 EDT"
        assert clock.iso(first) == "2026-11-01T01:30:00-04:00"
        assert clock.iso(second) == "2026-11-01T01:30:00-05:00"
        start, end = clock.day_bounds(date(2026, 11, 1))
        assert (start, end) == (at("2026-11-01 04:00"), at("2026-11-02 05:00"))
        assert end - start == timedelta(hours=25)


def test_the_night_the_clocks_go_forward_skips_an_hour(app):
    """2026-03-08 in New York: 01:59 EST is followed by 03:00 EDT."""
    with app.app_context():
        assert clock.clock_time(at("2026-03-08 06:59"), seconds=True) == "01:59:00 EST"
        assert clock.clock_time(at("2026-03-08 07:00"), seconds=True) == "03:00:00 EDT"
        start, end = clock.day_bounds(date(2026, 3, 8))
        assert end - start == timedelta(hours=23)
        assert clock.local_date(at("2026-03-08 04:59")) == "2026-03-07"


def test_today_is_the_offices_day_near_midnight_utc(app):
    late_evening_in_new_york = at("2026-11-04 03:30")  # 22:30 EST on 3 November; UTC says the 4th
    with app.app_context():
        assert clock.today(late_evening_in_new_york) == date(2026, 11, 3)
        assert clock.today(at("2026-11-04 05:00")) == date(2026, 11, 4)  # New York's midnight
    assert clock.today(late_evening_in_new_york, ZoneInfo("UTC")) == date(2026, 11, 4)
    assert clock.today(at("2026-11-03 11:30"), ZoneInfo("Pacific/Auckland")) == date(2026, 11, 4)


def test_a_naive_time_is_read_as_utc(app):
    with app.app_context():
        assert clock.clock_time(datetime(2026, 7, 4, 16, 0)) == "12:00 EDT"


@pytest.mark.parametrize("name", ["America/Nowhere", "EST5EDT/Atlantis", "", "../../etc/passwd", 5])
def test_a_time_zone_that_does_not_exist_stops_start_up(app_factory, name):
    with pytest.raises(ValueError) as refused:
        app_factory(TIME_ZONE=name)
    message = str(refused.value)
    assert "time_zone" in message and repr(name) in message and "America/New_York" in message


def test_the_time_zone_can_come_from_the_environment(app_factory, monkeypatch):
    monkeypatch.setenv("PORTAL_TIME_ZONE", "Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="time_zone = 'Mars/Olympus_Mons'"):
        app_factory()
    monkeypatch.setenv("PORTAL_TIME_ZONE", "Asia/Tokyo")
    tokyo = app_factory()
    with tokyo.app_context():
        assert clock.clock_time(at("2026-11-01 05:30")) == "14:30 JST"


# The audit log: page, filters, CSV ----------------------------------------------------------------


def add_events(run, *moments: datetime) -> None:
    """Audit events at the given instants (the chain kept whole), entity "clock", ids 1, 2, …"""

    async def go():
        async with transaction() as db:
            await db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})
            prev = await db.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
            for number, moment in enumerate(moments, 1):
                fields = {
                    "created_at": moment,
                    "username": "system",
                    "user_id": None,
                    "action": "tick",
                    "entity": "clock",
                    "entity_id": str(number),
                    "before": None,
                    "after": None,
                    "prev_hash": prev or GENESIS_HASH,
                }
                prev = event_hash(**fields)
                db.add(AuditEvent(**fields, hash=prev))
                await db.flush()

    run(go())


def clock_rows(page: str) -> list[tuple[str, str]]:
    """(time shown, entity id) of the "clock" events on an audit page, newest first."""
    return re.findall(
        r'<td class="text-nowrap small">([^<]+)</td>.*?clock <span class="font-monospace">(\d+)</span>',
        page,
        flags=re.S,
    )


def test_the_audit_date_filter_is_the_offices_day(client_as, run):
    add_events(
        run,
        at("2026-11-03 04:30"),  # 1: 23:30 EST on 2 November
        at("2026-11-03 05:00"),  # 2: midnight in New York: 3 November
        at("2026-11-04 03:00"),  # 3: 22:00 EST on 3 November (UTC says the 4th)
        at("2026-11-04 05:00"),  # 4: midnight again: 4 November
    )
    admin = client_as("admin")
    page = admin.get("/audit?entity=clock&since=2026-11-03&until=2026-11-03").text
    assert clock_rows(page) == [("2026-11-03 22:00:00 EST", "3"), ("2026-11-03 00:00:00 EST", "2")]
    assert '<th scope="col">Time</th>' in page and "UTC" not in page
    page = admin.get("/audit?entity=clock&since=2026-11-04", headers=HX).text
    assert clock_rows(page) == [("2026-11-04 00:00:00 EST", "4")]
    page = admin.get("/audit?entity=clock&until=2026-11-02", headers=HX).text
    assert clock_rows(page) == [("2026-11-02 23:30:00 EST", "1")]


def test_the_day_the_clocks_go_back_is_25_hours_in_the_audit_log_and_its_csv(client_as, run):
    add_events(
        run,
        at("2026-11-01 03:59"),  # 1: 23:59 EDT on 31 October
        at("2026-11-01 05:30"),  # 2: 01:30 EDT
        at("2026-11-01 06:30"),  # 3: 01:30 EST, an hour later
        at("2026-11-02 04:59"),  # 4: 23:59 EST on 1 November (25 h after its midnight, less a minute)
        at("2026-11-02 05:00"),  # 5: 2 November
    )
    admin = client_as("admin")
    query = "entity=clock&since=2026-11-01&until=2026-11-01"
    assert clock_rows(admin.get(f"/audit?{query}").text) == [
        ("2026-11-01 23:59:00 EST", "4"),
        ("2026-11-01 01:30:00 EST", "3"),
        ("2026-11-01 01:30:00 EDT", "2"),
    ]
    response = admin.get(f"/audit/events.csv?{query}")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][:2] == ["id", "time"]
    assert [(row[1], row[5]) for row in rows[1:]] == [
        ("2026-11-01T23:59:00-05:00", "4"),
        ("2026-11-01T01:30:00-05:00", "3"),
        ("2026-11-01T01:30:00-04:00", "2"),
    ]
    for row in rows[1:]:  # the offset is the true one: the same instant as stored
        assert datetime.fromisoformat(row[1]).astimezone(UTC) in {
            at("2026-11-02 04:59"),
            at("2026-11-01 06:30"),
            at("2026-11-01 05:30"),
        }


def test_the_audit_page_follows_another_office_zone(app_factory, create_user, run):
    add_events(run, at("2026-11-04 03:00"))
    paris = app_factory(TIME_ZONE="Europe/Paris")
    client = paris.test_client()
    user = create_user("admin")
    assert (
        client.post("/login", data={"username": user.username, "password": TEST_PASSWORD}).status_code == 302
    )
    page = client.get("/audit?entity=clock&since=2026-11-04&until=2026-11-04").text
    assert clock_rows(page) == [("2026-11-04 04:00:00 CET", "1")]
    assert '<meta name="office-time-zone" content="Europe/Paris">' in page
    # The first and last days there are: midnight in Paris lies outside what a datetime holds.
    for edge in ("0001-01-01", "9999-12-31"):
        for name in ("since", "until"):
            assert client.get(f"/audit?{name}={edge}").status_code == 200
            assert client.get(f"/audit/events.csv?{name}={edge}").status_code == 200


# "Today" in the voter form, sent as a browser sends it (CSRF on) ----------------------------------


VOTER = {
    "state_voter_id": "NY000001",
    "first_name": "Ada",
    "middle_name": "",
    "last_name": "Lovelace",
    "date_of_birth": "1985-12-10",
    "birth_year": "",
    "address": "1 Main St",
    "city": "Riverton",
    "postal_code": "12601",
    "party_id": "0",
    "status": "active",
    "precinct_code": "111-C",
}


@pytest.fixture
def late_evening(monkeypatch):
    """22:30 EST on 3 November 2026 in New York: UTC's date is already the 4th."""
    monkeypatch.setattr(clock, "utcnow", lambda: at("2026-11-04 03:30"))


@pytest.fixture
def clerk_with_csrf(app_factory, create_user, create_precinct):
    create_precinct(code="111-C")
    app = app_factory(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    user = create_user("clerk")
    token = csrf_token_from(client.get("/login").text)
    response = client.post(
        "/login", data={"username": user.username, "password": TEST_PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302
    return client


def post_voter(client, **changes):
    token = csrf_token_from(client.get("/voters/new").text)
    return client.post("/voters/new", data={**VOTER, **changes, "csrf_token": token}, headers=HX)


def test_registered_on_the_offices_today_is_not_the_future(late_evening, clerk_with_csrf):
    refused = post_voter(clerk_with_csrf, registration_date="2026-11-04")  # UTC's today, New York's tomorrow
    assert refused.status_code == 422 and "cannot be in the future" in refused.text
    saved = post_voter(clerk_with_csrf, registration_date="2026-11-03")
    assert saved.status_code == 200 and "cannot be in the future" not in saved.text
    assert "1 voter" in clerk_with_csrf.get("/voters").text


def test_a_date_of_birth_of_the_offices_today_is_not_the_future(late_evening, clerk_with_csrf):
    tomorrow = post_voter(clerk_with_csrf, date_of_birth="2026-11-04", registration_date="2026-11-03")
    assert tomorrow.status_code == 422 and "between 1900 and today" in tomorrow.text
    today = post_voter(clerk_with_csrf, date_of_birth="2026-11-03", registration_date="2026-11-03")
    # Born today is a plausible date of birth; registering today at 0 days old is the age rule's refusal.
    assert today.status_code == 422 and "between 1900 and today" not in today.text
    assert "under 16 when registered" in today.text


def test_a_birth_year_is_the_offices_year_on_new_years_eve(monkeypatch, clerk_with_csrf):
    monkeypatch.setattr(clock, "utcnow", lambda: at("2027-01-01 02:00"))  # 21:00 EST on 31 December 2026
    response = post_voter(
        clerk_with_csrf, date_of_birth="", birth_year="2027", registration_date="2026-12-31"
    )
    assert response.status_code == 422 and "between 1900 and 2026" in response.text


# Messages -----------------------------------------------------------------------------------------


def test_a_second_check_in_names_the_first_on_the_offices_clock(
    client_as, create_election, create_voters, run
):
    made = create_election(status="open", precincts=1)
    (john,) = create_voters([("Smith", "John")], precinct=made.precincts[0])
    clerk = client_as("clerk")
    url = f"/check-in/{made.election.id}/voters/{john}"
    assert clerk.post(url, data={"method": "early", "q": "smith"}, headers=HX).status_code == 200

    async def backdate():
        async with transaction() as db:
            await db.execute(update(CheckIn).values(checked_in_at=at("2026-11-01 06:30")))

    run(backdate())
    other = clerk.post(url, data={"method": "in_person", "q": "smith"}, headers=HX)
    assert other.status_code == 409
    assert "checked in 01:30 EST on 1 Nov 2026" in other.text


def test_the_import_judges_dates_by_the_offices_today(late_evening, app, create_precinct, tmp_path):
    """The import's rules run in SQL, where current_date is the database session's day: they are
    given the office's date instead."""
    from tests.test_imports import csv_bytes, voter_line

    create_precinct(code="111-C")
    lines = [
        voter_line(1, registered="2026-11-03"),  # the office's today: fine
        voter_line(2, registered="2026-11-04"),  # UTC's today, the office's tomorrow
        voter_line(3, dob="2026-11-04", registered="2026-11-03"),
        voter_line(4, dob="2026-11-03", registered="2026-11-03"),  # born today: plausible, but under 16
    ]
    path = tmp_path / "voters.csv"
    path.write_bytes(csv_bytes(lines))
    errors = tmp_path / "errors.csv"
    result = app.test_cli_runner().invoke(args=["import-voters", "--errors", str(errors), str(path)])
    assert result.exit_code == 1, result.output
    reasons = {(row["line"], row["column"]): row["reason"] for row in csv.DictReader(errors.open())}
    assert reasons == {
        ("3", "Reg Date"): "is in the future",
        ("4", "DOB"): "is not a plausible date of birth",
        ("4", "Reg Date"): "is before the voter turned 16",
        ("5", "Reg Date"): "is before the voter turned 16",
    }, reasons


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Tokyo", "Pacific/Kiritimati", "Etc/GMT+12"])
def test_the_first_and_last_days_there_are_have_no_bound_beyond_them(zone):
    first, last = date.min, date.max
    assert clock.day_bounds(last, ZoneInfo(zone))[1] is None
    start, end = clock.day_bounds(first, ZoneInfo(zone))
    ahead_of_utc = ZoneInfo(zone).utcoffset(datetime(1, 1, 1)) > timedelta(0)  # (its local mean time)
    assert end is not None and (start is None) == ahead_of_utc
