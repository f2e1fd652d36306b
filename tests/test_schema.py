"""Migrations produce exactly the models' schema, and the database enforces the domain rules."""

from __future__ import annotations

import asyncio
import re
from datetime import date

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from portal import migrate
from portal.models import Base
from portal.voters.importing import SCRATCH_PATTERN


def _expression_indexes() -> dict[str, list[str]]:
    """Indexes on expressions, which alembic cannot compare: name -> expected expressions."""
    found = {}
    for table in Base.metadata.tables.values():
        for index in table.indexes:
            texts = [str(e) for e in index.expressions if not hasattr(e, "table")]
            if texts:
                found[index.name] = texts
    return found


def _diff(url: str):
    """Differences between the migrated database and the models; expression indexes are checked
    by name and definition in pg_indexes instead."""
    expression = _expression_indexes()

    async def go():
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                diff = await conn.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                    )
                )
                definitions = dict(
                    (await conn.execute(text("SELECT indexname, indexdef FROM pg_indexes"))).tuples().all()
                )
        finally:
            await engine.dispose()
        diff = [d for d in diff if not (d[0] in ("add_index", "remove_index") and d[1].name in expression)]
        # Imports' scratch tables (import_stage_N, import_norm_N) are not part of the schema.
        diff = [d for d in diff if not (d[0] == "remove_table" and re.match(SCRATCH_PATTERN, d[1].name))]
        for name, expressions in expression.items():

            def bare(sql: str) -> str:  # pg_indexes adds casts and parentheses
                return sql.replace("::text", "").replace("(", "").replace(")", "").replace(" ", "")

            definition = definitions.get(name, "")
            missing = [e for e in expressions if bare(e) not in bare(definition)]
            if missing:
                diff.append(("expression_index", name, missing, definition))
        return diff

    return asyncio.run(go())


def test_migrations_match_models(database_url):
    assert _diff(database_url) == []


def test_downgrade_and_upgrade_again(database_url):
    from sqlalchemy.engine import make_url

    url = make_url(database_url).set(database=make_url(database_url).database + "_mig")
    url = url.render_as_string(hide_password=False)
    migrate.create_database(url)
    try:
        migrate.upgrade(url)
        from alembic import command

        command.downgrade(migrate.alembic_config(url), "base")
        migrate.upgrade(url)
        assert _diff(url) == []
    finally:
        migrate.drop_database(url)


@pytest.fixture
def sql(run):
    from portal.db import transaction

    def execute(statement: str, **params):
        async def go():
            async with transaction() as db:
                result = await db.execute(text(statement), params)
                return result.all() if result.returns_rows else None

        return run(go())

    return execute


@pytest.fixture
def roll(sql, create_user, create_precinct):
    """One precinct, two voters, one election with one contest and candidate; returns ids."""
    user = create_user("clerk")
    precinct = create_precinct()
    ids = {"user": user.id, "precinct": precinct.id}
    for n in (1, 2):
        ids[f"voter{n}"] = sql(
            "INSERT INTO voter (state_voter_id, first_name, last_name, date_of_birth, birth_year, address,"
            " precinct_id, registration_date)"
            " VALUES (:vid, 'Ann', 'Lee', '1980-01-01', 1980, '1 Main St', :p, '2020-01-01')"
            " RETURNING id",
            vid=f"V000{n}",
            p=precinct.id,
        )[0][0]
    ids["election"] = sql(
        "INSERT INTO election (name, election_date, kind) VALUES ('E', :d, 'general') RETURNING id",
        d=date(2026, 11, 3),
    )[0][0]
    sql("INSERT INTO counting_group (election_id, method) VALUES (:e, 'election_day')", e=ids["election"])
    ids["contest"] = sql(
        "INSERT INTO contest (election_id, office_title) VALUES (:e, 'Mayor') RETURNING id", e=ids["election"]
    )[0][0]
    ids["candidate"] = sql(
        "INSERT INTO candidate (contest_id, election_id, code, ballot_name) VALUES (:c, :e, 'MAY-1', 'A')"
        " RETURNING id",
        c=ids["contest"],
        e=ids["election"],
    )[0][0]
    return ids


def test_voter_id_is_unique(sql, roll):
    with pytest.raises(IntegrityError, match="uq_voter_state_voter_id"):
        sql(
            "INSERT INTO voter (state_voter_id, first_name, last_name, date_of_birth, birth_year, address,"
            " precinct_id, registration_date)"
            " VALUES ('V0001', 'B', 'C', '1980-01-01', 1980, 'x', :p, '2020-01-01')",
            p=roll["precinct"],
        )


def test_one_check_in_per_voter_per_election(sql, roll):
    insert = (
        "INSERT INTO check_in (voter_id, election_id, precinct_id, method, user_id)"
        " VALUES (:v, :e, :p, 'in_person', :u)"
    )
    args = dict(v=roll["voter1"], e=roll["election"], p=roll["precinct"], u=roll["user"])
    sql(insert, **args)
    with pytest.raises(IntegrityError, match="uq_check_in_voter_election"):
        sql(insert, **args)


@pytest.mark.parametrize(
    ("statement", "constraint"),
    [
        ("UPDATE election SET status = 'finished'", "ck_election_status"),
        ("UPDATE contest SET vote_for = 0", "ck_contest_vote_for_positive"),
        ("UPDATE voter SET status = 'deleted'", "ck_voter_status"),
        ("UPDATE voter SET date_of_birth = '1850-01-01'", "ck_voter_birth_plausible"),
        ("UPDATE voter SET birth_year = 1979", "ck_voter_birth_year_matches"),
        ("UPDATE voter SET date_of_birth = NULL, birth_year = 1850", "ck_voter_birth_year_plausible"),
        ("UPDATE candidate SET status = 'elected'", "ck_candidate_status"),
        ("UPDATE precinct SET code = 'lower case'", "ck_precinct_code_format"),
        ("UPDATE user_account SET role = 'root'", "ck_user_account_role"),
    ],
)
def test_check_constraints(sql, roll, statement, constraint):
    with pytest.raises(IntegrityError, match=constraint):
        sql(statement)


def test_returns_refuse_negative_counts_and_self_verification(sql, roll):
    insert = (
        "INSERT INTO precinct_return (election_id, precinct_id, contest_id, method, ballots_cast, overvotes,"
        " undervotes, entered_by_id, status, verified_by_id) VALUES (:e, :p, :c, :m, :b, :o, 0, :u, :s, :v)"
    )
    base = dict(e=roll["election"], p=roll["precinct"], c=roll["contest"], u=roll["user"], m="election_day")
    with pytest.raises(IntegrityError, match="ck_precinct_return_ballots_cast"):
        sql(insert, **base, b=-1, o=0, s="entered", v=None)
    with pytest.raises(IntegrityError, match="ck_precinct_return_overvotes"):
        sql(insert, **base, b=1, o=-2, s="entered", v=None)
    with pytest.raises(IntegrityError, match="ck_precinct_return_four_eyes"):
        sql(insert, **base, b=1, o=0, s="verified", v=roll["user"])


def test_a_return_is_for_a_method_the_election_counts(sql, roll):
    insert = (
        "INSERT INTO precinct_return (election_id, precinct_id, contest_id, method, ballots_cast,"
        " entered_by_id) VALUES (:e, :p, :c, :m, 1, :u)"
    )
    base = dict(e=roll["election"], p=roll["precinct"], c=roll["contest"], u=roll["user"])
    with pytest.raises(IntegrityError, match="fk_precinct_return_counting_group"):
        sql(insert, **base, m="early")  # a real method, not counted by this election
    with pytest.raises(IntegrityError, match="ck_counting_group_method"):
        sql("INSERT INTO counting_group (election_id, method) VALUES (:e, 'by_pigeon')", e=roll["election"])
    sql(insert, **base, m="election_day")
    sql("INSERT INTO counting_group (election_id, method) VALUES (:e, 'early')", e=roll["election"])
    sql(insert, **base, m="early")  # its own revision 1: revisions are numbered per method


def test_candidate_must_belong_to_its_contests_election(sql, roll):
    other = sql(
        "INSERT INTO election (name, election_date, kind) VALUES ('F', '2027-01-01', 'special') RETURNING id"
    )[0][0]
    with pytest.raises(IntegrityError, match="fk_candidate_contest_election"):
        sql(
            "INSERT INTO candidate (contest_id, election_id, code, ballot_name) VALUES (:c, :e, 'X-1', 'X')",
            c=roll["contest"],
            e=other,
        )


def test_audit_events_are_append_only(sql, create_user):
    create_user("admin")
    with pytest.raises(DBAPIError, match="append-only"):
        sql("UPDATE audit_event SET username = 'someone else'")
    with pytest.raises(DBAPIError, match="append-only"):
        sql("DELETE FROM audit_event")


@pytest.mark.parametrize(
    ("statement", "constraint"),
    [
        (
            "UPDATE check_in SET provisional_status = 'pending' WHERE method = 'in_person'",
            "provisional_status_method",
        ),
        (
            "UPDATE check_in SET provisional_status = NULL WHERE method = 'provisional'",
            "provisional_status_method",
        ),
        (
            "UPDATE check_in SET provisional_status = 'maybe', decided_at = now(), decided_by_id = user_id,"
            " decision_reason = 'x' WHERE method = 'provisional'",
            "ck_check_in_provisional_status",
        ),
        (
            "UPDATE check_in SET provisional_status = 'accepted' WHERE method = 'provisional'",
            "decided_unless_pending",
        ),
        ("UPDATE check_in SET decided_at = now() WHERE method = 'provisional'", "decided_together"),
        ("UPDATE check_in SET voided_at = now()", "voided_together"),
        (
            "UPDATE check_in SET voided_at = now(), voided_by_id = user_id, void_reason = ' '",
            "void_reason_given",
        ),
    ],
)
def test_check_in_decisions_and_voids_hold_together(sql, roll, statement, constraint):
    for voter, method in ((roll["voter1"], "in_person"), (roll["voter2"], "provisional")):
        sql(
            "INSERT INTO check_in (voter_id, election_id, precinct_id, method, user_id, provisional_status)"
            " VALUES (:v, :e, :p, :m, :u, :s)",
            v=voter,
            e=roll["election"],
            p=roll["precinct"],
            m=method,
            u=roll["user"],
            s="pending" if method == "provisional" else None,
        )
    with pytest.raises(IntegrityError, match=constraint):
        sql(statement)


def test_a_voided_check_in_makes_room_for_one_live_one(sql, roll):
    insert = (
        "INSERT INTO check_in (voter_id, election_id, precinct_id, method, user_id)"
        " VALUES (:v, :e, :p, 'in_person', :u)"
    )
    args = dict(v=roll["voter1"], e=roll["election"], p=roll["precinct"], u=roll["user"])
    sql(insert, **args)
    sql("UPDATE check_in SET voided_at = now(), voided_by_id = user_id, void_reason = 'wrong voter'")
    sql(insert, **args)
    with pytest.raises(IntegrityError, match="uq_check_in_voter_election_live"):
        sql(insert, **args)


def test_0012_makes_existing_provisionals_pending_and_its_downgrade_keeps_voids(database_url):
    """Provisional ballots issued before 0012 are pending (nobody decided them); going back to 0010
    is refused while a void or a decision would be lost, and works once there is none."""
    import asyncpg
    from alembic import command
    from sqlalchemy.engine import make_url

    url = make_url(database_url).set(database=make_url(database_url).database + "_0012")
    url = url.render_as_string(hide_password=False)
    dsn = url.replace("postgresql+asyncpg", "postgresql")

    def execute(*statements):
        async def go():
            conn = await asyncpg.connect(dsn)
            try:
                results = [await conn.fetch(s) for s in statements]
            finally:
                await conn.close()
            return results[-1]

        return asyncio.run(go())

    migrate.create_database(url)
    try:
        migrate.upgrade(url, "0010")
        execute(
            "INSERT INTO user_account (username, display_name, password_hash, role)"
            " VALUES ('clerk1', 'C', 'x', 'clerk')",
            "INSERT INTO precinct (code, name) VALUES ('P-001', 'One')",
            "INSERT INTO election (name, election_date, kind) VALUES ('E', '2026-11-03', 'general')",
            "INSERT INTO voter (state_voter_id, first_name, last_name, date_of_birth, birth_year, address,"
            " precinct_id, registration_date) SELECT 'V000' || n, 'A', 'B', '1980-01-01', 1980, 'x', p.id,"
            " '2020-01-01' FROM precinct p, generate_series(1, 2) n",
            "INSERT INTO check_in (voter_id, election_id, precinct_id, method, user_id)"
            " SELECT v.id, e.id, v.precinct_id, CASE WHEN v.state_voter_id = 'V0001' THEN 'provisional'"
            " ELSE 'in_person' END, u.id FROM voter v, election e, user_account u",
        )
        migrate.upgrade(url)
        rows = execute("SELECT method, provisional_status FROM check_in ORDER BY method")
        assert [tuple(r) for r in rows] == [("in_person", None), ("provisional", "pending")]
        execute("UPDATE check_in SET voided_at = now(), voided_by_id = user_id, void_reason = 'x'")
        with pytest.raises(Exception, match="0010 cannot keep them"):
            command.downgrade(migrate.alembic_config(url), "0010")
        execute("UPDATE check_in SET voided_at = NULL, voided_by_id = NULL, void_reason = NULL")
        command.downgrade(migrate.alembic_config(url), "0010")
        assert len(execute("SELECT * FROM check_in")) == 2
    finally:
        migrate.drop_database(url)
