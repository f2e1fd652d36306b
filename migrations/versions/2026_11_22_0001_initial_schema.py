"""initial schema: every entity of DOMAIN.md, and the append-only audit trail

Revision ID: 0001
Revises:
Created: 2026-11-22 00:47:39.424213
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("failures >= 0", name=op.f("ck_login_throttle_failures")),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_login_throttle")),
    )
    op.create_table(
        "user_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=40), nullable=False),
        sa.Column("display_name", sa.String(length=120), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "role IN ('admin', 'manager', 'clerk', 'observer')", name=op.f("ck_user_account_role")
        ),
        sa.CheckConstraint("username ~ '^[a-z0-9._-]{3,40}$'", name=op.f("ck_user_account_username_format")),
        sa.CheckConstraint("failed_logins >= 0", name=op.f("ck_user_account_failed_logins")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_account")),
        sa.UniqueConstraint("username", name=op.f("uq_user_account_username")),
    )
    op.create_table(
        "audit_event",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_audit_event_user_id_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_event_hash")),
    )
    op.create_index("ix_audit_event_entity", "audit_event", ["entity", "entity_id"], unique=False)
    op.create_index("ix_audit_event_user", "audit_event", ["user_id"], unique=False)
    op.create_table(
        "election",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=160), nullable=False),
        sa.Column("election_date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="draft", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('general', 'primary', 'special', 'organisational')",
            name=op.f("ck_election_kind"),
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'open', 'closed', 'certified')", name=op.f("ck_election_status")
        ),
        sa.CheckConstraint("length(btrim(name)) > 0", name=op.f("ck_election_name_not_blank")),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["user_account.id"],
            name=op.f("fk_election_updated_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_election")),
    )
    op.create_table(
        "party",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("abbreviation", sa.String(length=10), nullable=False),
        sa.Column("colour", sa.String(length=7), server_default="#6c757d", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("colour ~ '^#[0-9a-f]{6}$'", name=op.f("ck_party_colour_format")),
        sa.CheckConstraint("length(btrim(name)) > 0", name=op.f("ck_party_name_not_blank")),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["user_account.id"], name=op.f("fk_party_updated_by_id_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_party")),
        sa.UniqueConstraint("abbreviation", name=op.f("uq_party_abbreviation")),
        sa.UniqueConstraint("name", name=op.f("uq_party_name")),
    )
    op.create_table(
        "precinct",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("polling_place", sa.String(length=200), server_default="", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("code ~ '^[A-Z0-9][A-Z0-9-]{0,15}$'", name=op.f("ck_precinct_code_format")),
        sa.CheckConstraint("length(btrim(name)) > 0", name=op.f("ck_precinct_name_not_blank")),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["user_account.id"],
            name=op.f("fk_precinct_updated_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_precinct")),
        sa.UniqueConstraint("code", name=op.f("uq_precinct_code")),
    )
    op.create_table(
        "contest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("election_id", sa.Integer(), nullable=False),
        sa.Column("office_title", sa.String(length=160), nullable=False),
        sa.Column("vote_for", sa.Integer(), server_default="1", nullable=False),
        sa.Column("ballot_order", sa.Integer(), server_default="0", nullable=False),
        sa.Column("is_measure", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("ballot_order >= 0", name=op.f("ck_contest_ballot_order")),
        sa.CheckConstraint("length(btrim(office_title)) > 0", name=op.f("ck_contest_title_not_blank")),
        sa.CheckConstraint("vote_for >= 1", name=op.f("ck_contest_vote_for_positive")),
        sa.ForeignKeyConstraint(
            ["election_id"],
            ["election.id"],
            name=op.f("fk_contest_election_id_election"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["user_account.id"],
            name=op.f("fk_contest_updated_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contest")),
        sa.UniqueConstraint("id", "election_id", name="uq_contest_id_election"),
    )
    op.create_index(op.f("ix_contest_election_id"), "contest", ["election_id"], unique=False)
    op.create_table(
        "election_precinct",
        sa.Column("election_id", sa.Integer(), nullable=False),
        sa.Column("precinct_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["election_id"],
            ["election.id"],
            name=op.f("fk_election_precinct_election_id_election"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["precinct_id"], ["precinct.id"], name=op.f("fk_election_precinct_precinct_id_precinct")
        ),
        sa.PrimaryKeyConstraint("election_id", "precinct_id", name=op.f("pk_election_precinct")),
    )
    op.create_table(
        "incident",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("election_id", sa.Integer(), nullable=False),
        sa.Column("precinct_id", sa.Integer(), nullable=True),
        sa.Column("state_voter_id", sa.String(length=20), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("reported_by_id", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('open', 'resolved')", name=op.f("ck_incident_status")),
        sa.CheckConstraint("length(btrim(body)) > 0", name=op.f("ck_incident_body_not_blank")),
        sa.ForeignKeyConstraint(
            ["election_id"], ["election.id"], name=op.f("fk_incident_election_id_election")
        ),
        sa.ForeignKeyConstraint(
            ["precinct_id"], ["precinct.id"], name=op.f("fk_incident_precinct_id_precinct")
        ),
        sa.ForeignKeyConstraint(
            ["reported_by_id"],
            ["user_account.id"],
            name=op.f("fk_incident_reported_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"],
            ["user_account.id"],
            name=op.f("fk_incident_resolved_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident")),
    )
    op.create_index(op.f("ix_incident_election_id"), "incident", ["election_id"], unique=False)
    op.create_table(
        "voter",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("state_voter_id", sa.String(length=20), nullable=False),
        sa.Column("first_name", sa.String(length=80), nullable=False),
        sa.Column("middle_name", sa.String(length=80), server_default="", nullable=False),
        sa.Column("last_name", sa.String(length=80), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("city", sa.String(length=80), server_default="", nullable=False),
        sa.Column("postal_code", sa.String(length=10), server_default="", nullable=False),
        sa.Column("precinct_id", sa.Integer(), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("registration_date", sa.Date(), nullable=False),
        sa.Column("last_voted_on", sa.Date(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("date_of_birth >= '1900-01-01'", name=op.f("ck_voter_birth_plausible")),
        sa.CheckConstraint("state_voter_id ~ '^[A-Z0-9]{4,20}$'", name=op.f("ck_voter_voter_id_format")),
        sa.CheckConstraint("status IN ('active', 'inactive', 'removed')", name=op.f("ck_voter_status")),
        sa.ForeignKeyConstraint(["party_id"], ["party.id"], name=op.f("fk_voter_party_id_party")),
        sa.ForeignKeyConstraint(["precinct_id"], ["precinct.id"], name=op.f("fk_voter_precinct_id_precinct")),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["user_account.id"], name=op.f("fk_voter_updated_by_id_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voter")),
        sa.UniqueConstraint("state_voter_id", name=op.f("uq_voter_state_voter_id")),
    )
    op.create_index(
        "ix_voter_precinct_active",
        "voter",
        ["precinct_id"],
        unique=False,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "candidate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contest_id", sa.Integer(), nullable=False),
        sa.Column("election_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=24), nullable=False),
        sa.Column("ballot_name", sa.String(length=160), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=True),
        sa.Column("ballot_order", sa.Integer(), server_default="0", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="qualified", nullable=False),
        sa.Column("write_in", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("code ~ '^[A-Z0-9][A-Z0-9-]{0,23}$'", name=op.f("ck_candidate_code_format")),
        sa.CheckConstraint("status IN ('qualified', 'withdrawn')", name=op.f("ck_candidate_status")),
        sa.CheckConstraint("ballot_order >= 0", name=op.f("ck_candidate_ballot_order")),
        sa.CheckConstraint("length(btrim(ballot_name)) > 0", name=op.f("ck_candidate_name_not_blank")),
        sa.ForeignKeyConstraint(
            ["contest_id", "election_id"],
            ["contest.id", "contest.election_id"],
            name="fk_candidate_contest_election",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["party_id"], ["party.id"], name=op.f("fk_candidate_party_id_party")),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["user_account.id"],
            name=op.f("fk_candidate_updated_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_candidate")),
        sa.UniqueConstraint("election_id", "code", name="uq_candidate_election_code"),
    )
    op.create_index(op.f("ix_candidate_contest_id"), "candidate", ["contest_id"], unique=False)
    op.create_table(
        "check_in",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("voter_id", sa.BigInteger(), nullable=False),
        sa.Column("election_id", sa.Integer(), nullable=False),
        sa.Column("precinct_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column(
            "checked_in_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "method IN ('in_person', 'early', 'mail', 'provisional')",
            name=op.f("ck_check_in_method"),
        ),
        sa.ForeignKeyConstraint(
            ["election_id"], ["election.id"], name=op.f("fk_check_in_election_id_election")
        ),
        sa.ForeignKeyConstraint(
            ["precinct_id"], ["precinct.id"], name=op.f("fk_check_in_precinct_id_precinct")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_check_in_user_id_user_account")
        ),
        sa.ForeignKeyConstraint(["voter_id"], ["voter.id"], name=op.f("fk_check_in_voter_id_voter")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_in")),
        sa.UniqueConstraint("voter_id", "election_id", name="uq_check_in_voter_election"),
    )
    op.create_index("ix_check_in_election_precinct", "check_in", ["election_id", "precinct_id"], unique=False)
    op.create_table(
        "contest_precinct",
        sa.Column("contest_id", sa.Integer(), nullable=False),
        sa.Column("precinct_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contest_id"],
            ["contest.id"],
            name=op.f("fk_contest_precinct_contest_id_contest"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["precinct_id"], ["precinct.id"], name=op.f("fk_contest_precinct_precinct_id_precinct")
        ),
        sa.PrimaryKeyConstraint("contest_id", "precinct_id", name=op.f("pk_contest_precinct")),
    )
    op.create_table(
        "precinct_return",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("election_id", sa.Integer(), nullable=False),
        sa.Column("precinct_id", sa.Integer(), nullable=False),
        sa.Column("contest_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), server_default="1", nullable=False),
        sa.Column("ballots_cast", sa.Integer(), nullable=False),
        sa.Column("overvotes", sa.Integer(), server_default="0", nullable=False),
        sa.Column("undervotes", sa.Integer(), server_default="0", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="entered", nullable=False),
        sa.Column("entered_by_id", sa.Integer(), nullable=False),
        sa.Column(
            "entered_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("verified_by_id", sa.Integer(), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(status = 'verified') = (verified_by_id IS NOT NULL)",
            name=op.f("ck_precinct_return_verified_has_verifier"),
        ),
        sa.CheckConstraint("status IN ('entered', 'verified')", name=op.f("ck_precinct_return_status")),
        sa.CheckConstraint("ballots_cast >= 0", name=op.f("ck_precinct_return_ballots_cast")),
        sa.CheckConstraint("overvotes >= 0", name=op.f("ck_precinct_return_overvotes")),
        sa.CheckConstraint("revision >= 1", name=op.f("ck_precinct_return_revision")),
        sa.CheckConstraint("undervotes >= 0", name=op.f("ck_precinct_return_undervotes")),
        sa.CheckConstraint(
            "verified_by_id IS NULL OR verified_by_id <> entered_by_id",
            name=op.f("ck_precinct_return_four_eyes"),
        ),
        sa.ForeignKeyConstraint(
            ["contest_id", "election_id"],
            ["contest.id", "contest.election_id"],
            name="fk_precinct_return_contest_election",
        ),
        sa.ForeignKeyConstraint(
            ["entered_by_id"],
            ["user_account.id"],
            name=op.f("fk_precinct_return_entered_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["precinct_id"], ["precinct.id"], name=op.f("fk_precinct_return_precinct_id_precinct")
        ),
        sa.ForeignKeyConstraint(
            ["verified_by_id"],
            ["user_account.id"],
            name=op.f("fk_precinct_return_verified_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_precinct_return")),
        sa.UniqueConstraint(
            "election_id",
            "precinct_id",
            "contest_id",
            "revision",
            name="uq_precinct_return_revision",
        ),
    )
    op.create_table(
        "return_vote",
        sa.Column("return_id", sa.BigInteger(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("votes", sa.Integer(), nullable=False),
        sa.CheckConstraint("votes >= 0", name=op.f("ck_return_vote_votes")),
        sa.ForeignKeyConstraint(
            ["candidate_id"], ["candidate.id"], name=op.f("fk_return_vote_candidate_id_candidate")
        ),
        sa.ForeignKeyConstraint(
            ["return_id"],
            ["precinct_return.id"],
            name=op.f("fk_return_vote_return_id_precinct_return"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("return_id", "candidate_id", name=op.f("pk_return_vote")),
    )

    # The audit trail is append-only: no UPDATE or DELETE, whoever asks.
    op.execute(
        """
        CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_event is append-only (% refused)', TG_OP;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event "
        "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER audit_event_append_only ON audit_event")
    op.execute("DROP FUNCTION audit_event_append_only()")
    op.drop_table("return_vote")
    op.drop_table("precinct_return")
    op.drop_table("contest_precinct")
    op.drop_index("ix_check_in_election_precinct", table_name="check_in")
    op.drop_table("check_in")
    op.drop_index(op.f("ix_candidate_contest_id"), table_name="candidate")
    op.drop_table("candidate")
    op.drop_index(
        "ix_voter_precinct_active",
        table_name="voter",
        postgresql_where=sa.text("status = 'active'"),
    )
    op.drop_table("voter")
    op.drop_index(op.f("ix_incident_election_id"), table_name="incident")
    op.drop_table("incident")
    op.drop_table("election_precinct")
    op.drop_index(op.f("ix_contest_election_id"), table_name="contest")
    op.drop_table("contest")
    op.drop_table("precinct")
    op.drop_table("party")
    op.drop_table("election")
    op.drop_index("ix_audit_event_user", table_name="audit_event")
    op.drop_index("ix_audit_event_entity", table_name="audit_event")
    op.drop_table("audit_event")
    op.drop_table("user_account")
    op.drop_table("login_throttle")
