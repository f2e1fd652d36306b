"""Typed SQLAlchemy models for every entity of the election domain (see shared/DOMAIN.md).

Rules that must hold whatever code writes the row live in the database: unique keys, foreign keys,
check constraints on statuses and counts. Editable rows carry `version` for optimistic concurrency
and `updated_by_id`/`updated_at` so a refused stale edit can say who changed the row and when.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    Date,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, aliased, mapped_column, relationship

ROLES = ("admin", "manager", "clerk", "observer")
ELECTION_KINDS = ("general", "primary", "special", "organisational")
ELECTION_STATUSES = ("draft", "open", "closed", "certified")
CANDIDATE_STATUSES = ("qualified", "withdrawn")
VOTER_STATUSES = ("active", "inactive", "removed")
CHECK_IN_METHODS = ("in_person", "early", "mail", "provisional")
PROVISIONAL_STATUSES = ("pending", "accepted", "rejected")
RETURN_STATUSES = ("entered", "verified")
# Counting groups: the voting methods a canvass reports separately (NIST SP 1500-100 CountItemType
# in portal/reports/nist.py). Every election declares the ones it counts; returns are kept per method.
VOTING_METHODS = ("election_day", "early", "absentee", "provisional")
INCIDENT_STATUSES = ("open", "resolved")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def created_at_column() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class Versioned:
    """Optimistic concurrency: UPDATE ... WHERE version = :seen, and who changed it last."""

    version: Mapped[int] = mapped_column(Integer, server_default="1")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))


class User(UserMixin, Base):
    __tablename__ = "user_account"
    __table_args__ = (
        CheckConstraint(one_of("role", ROLES), name="role"),
        CheckConstraint("failed_logins >= 0", name="failed_logins"),
        CheckConstraint("username ~ '^[a-z0-9._-]{3,40}$'", name="username_format"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    failed_logins: Mapped[int] = mapped_column(Integer, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # Two-factor sign-in (TOTP, RFC 6238): the shared secret once enrolment is confirmed, and the
    # last time step a code was accepted for (a code is never accepted twice).
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_pending_secret: Mapped[str | None] = mapped_column(String(64))  # shown, not yet confirmed
    totp_enabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)

    __mapper_args__ = {"version_id_col": version}

    # Flask-Login: an inactive account is refused at login and logged out on its next request.
    @property
    def is_active(self) -> bool:
        return self.active

    def has_role(self, *roles: str) -> bool:
        return self.role in roles


class UserSession(Base):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored. Signing out,
    "sign out everywhere", a password change or deactivation delete the row, and the cookie is then
    worth nothing."""

    __tablename__ = "user_session"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = created_at_column()
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    address: Mapped[str] = mapped_column(String(64), server_default="")
    user_agent: Mapped[str] = mapped_column(String(200), server_default="")


class RecoveryCode(Base):
    """One-time codes for a lost authenticator: only their SHA-256 is kept; used codes are deleted."""

    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = created_at_column()


class LoginThrottle(Base):
    """Failed sign-ins per client address (per-account failures live on the user row)."""

    __tablename__ = "login_throttle"
    __table_args__ = (CheckConstraint("failures >= 0", name="failures"),)

    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Precinct(Versioned, Base):
    __tablename__ = "precinct"
    __table_args__ = (
        CheckConstraint("code ~ '^[A-Z0-9][A-Z0-9-]{0,15}$'", name="code_format"),
        CheckConstraint("length(btrim(name)) > 0", name="name_not_blank"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    polling_place: Mapped[str] = mapped_column(String(200), server_default="")
    created_at: Mapped[datetime] = created_at_column()

    __mapper_args__ = {"version_id_col": Versioned.version}


class Party(Versioned, Base):
    __tablename__ = "party"
    __table_args__ = (
        CheckConstraint("colour ~ '^#[0-9a-f]{6}$'", name="colour_format"),
        CheckConstraint("length(btrim(name)) > 0", name="name_not_blank"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    abbreviation: Mapped[str] = mapped_column(String(10), unique=True)
    colour: Mapped[str] = mapped_column(String(7), server_default="#6c757d")
    created_at: Mapped[datetime] = created_at_column()

    __mapper_args__ = {"version_id_col": Versioned.version}


class Election(Versioned, Base):
    __tablename__ = "election"
    __table_args__ = (
        CheckConstraint(one_of("kind", ELECTION_KINDS), name="kind"),
        CheckConstraint(one_of("status", ELECTION_STATUSES), name="status"),
        CheckConstraint("length(btrim(name)) > 0", name="name_not_blank"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(160))
    election_date: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), server_default="draft")
    created_at: Mapped[datetime] = created_at_column()

    contests: Mapped[list[Contest]] = relationship(
        back_populates="election", order_by="Contest.ballot_order", viewonly=True
    )

    __mapper_args__ = {"version_id_col": Versioned.version}


class ElectionPrecinct(Base):
    """The precincts taking part in an election."""

    __tablename__ = "election_precinct"

    election_id: Mapped[int] = mapped_column(ForeignKey("election.id", ondelete="CASCADE"), primary_key=True)
    precinct_id: Mapped[int] = mapped_column(ForeignKey("precinct.id"), primary_key=True)
    # Active voters when the polls closed: the turnout denominator from then on (NULL while open).
    registered: Mapped[int | None] = mapped_column(Integer)


class Contest(Versioned, Base):
    __tablename__ = "contest"
    __table_args__ = (
        CheckConstraint("vote_for >= 1", name="vote_for_positive"),
        CheckConstraint("ballot_order >= 0", name="ballot_order"),
        CheckConstraint("length(btrim(office_title)) > 0", name="title_not_blank"),
        UniqueConstraint("id", "election_id", name="uq_contest_id_election"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    election_id: Mapped[int] = mapped_column(ForeignKey("election.id", ondelete="CASCADE"), index=True)
    office_title: Mapped[str] = mapped_column(String(160))
    vote_for: Mapped[int] = mapped_column(Integer, server_default="1")
    ballot_order: Mapped[int] = mapped_column(Integer, server_default="0")
    is_measure: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = created_at_column()

    election: Mapped[Election] = relationship(back_populates="contests")

    __mapper_args__ = {"version_id_col": Versioned.version}


class CountingGroup(Base):
    """A voting method an election counts and reports separately (default: all four)."""

    __tablename__ = "counting_group"
    __table_args__ = (CheckConstraint(one_of("method", VOTING_METHODS), name="method"),)

    election_id: Mapped[int] = mapped_column(ForeignKey("election.id", ondelete="CASCADE"), primary_key=True)
    method: Mapped[str] = mapped_column(String(16), primary_key=True)


class ContestPrecinct(Base):
    """The precincts whose ballot carries a contest."""

    __tablename__ = "contest_precinct"

    contest_id: Mapped[int] = mapped_column(ForeignKey("contest.id", ondelete="CASCADE"), primary_key=True)
    precinct_id: Mapped[int] = mapped_column(ForeignKey("precinct.id"), primary_key=True)


class Candidate(Versioned, Base):
    __tablename__ = "candidate"
    __table_args__ = (
        CheckConstraint(one_of("status", CANDIDATE_STATUSES), name="status"),
        CheckConstraint("ballot_order >= 0", name="ballot_order"),
        CheckConstraint("code ~ '^[A-Z0-9][A-Z0-9-]{0,23}$'", name="code_format"),
        CheckConstraint("length(btrim(ballot_name)) > 0", name="name_not_blank"),
        UniqueConstraint("election_id", "code", name="uq_candidate_election_code"),
        # The election is stored for the unique code and must be the contest's own election.
        ForeignKeyConstraint(
            ["contest_id", "election_id"],
            ["contest.id", "contest.election_id"],
            name="fk_candidate_contest_election",
            ondelete="CASCADE",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contest_id: Mapped[int] = mapped_column(Integer, index=True)
    election_id: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(24))
    ballot_name: Mapped[str] = mapped_column(String(160))
    party_id: Mapped[int | None] = mapped_column(ForeignKey("party.id"))
    ballot_order: Mapped[int] = mapped_column(Integer, server_default="0")
    status: Mapped[str] = mapped_column(String(16), server_default="qualified")
    write_in: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = created_at_column()

    __mapper_args__ = {"version_id_col": Versioned.version}


FILTERED = ["status", "party_id", "precinct_id"]


class Voter(Versioned, Base):
    __tablename__ = "voter"
    __table_args__ = (
        CheckConstraint(one_of("status", VOTER_STATUSES), name="status"),
        CheckConstraint("state_voter_id ~ '^[A-Z0-9]{4,20}$'", name="voter_id_format"),
        CheckConstraint("date_of_birth >= '1900-01-01'", name="birth_plausible"),
        # The year is always known; the full date when the state's file gives it.
        CheckConstraint("birth_year >= 1900", name="birth_year_plausible"),
        CheckConstraint(
            "date_of_birth IS NULL OR birth_year = extract(year FROM date_of_birth)",
            name="birth_year_matches",
        ),
        # Keyset search and sort at a million rows over stored lower-case keys in the "C" collation
        # (they serve ORDER BY and LIKE 'prefix%'; PostgreSQL does not treat C.UTF-8 as C for
        # LIKE). Filters are INCLUDEd, so counts and page keys are index-only scans.
        Index("ix_voter_name", "last_key", "first_key", "id", postgresql_include=FILTERED),
        Index(
            "ix_voter_precinct_name",
            "precinct_id",
            "last_key",
            "first_key",
            "id",
            postgresql_include=["status"],
        ),
        Index("ix_voter_address", "address_key", "id", postgresql_include=FILTERED),
        Index("ix_voter_registration", "registration_date", "id", postgresql_include=FILTERED),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    state_voter_id: Mapped[str] = mapped_column(String(20, collation="C"), unique=True)
    first_name: Mapped[str] = mapped_column(String(80))
    middle_name: Mapped[str] = mapped_column(String(80), server_default="")
    last_name: Mapped[str] = mapped_column(String(80))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    birth_year: Mapped[int] = mapped_column(SmallInteger)
    address: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(80), server_default="")
    postal_code: Mapped[str] = mapped_column(String(10), server_default="")
    precinct_id: Mapped[int] = mapped_column(ForeignKey("precinct.id"))
    party_id: Mapped[int | None] = mapped_column(ForeignKey("party.id"))
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    registration_date: Mapped[date] = mapped_column(Date)
    last_voted_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = created_at_column()
    # Search keys, kept by the database.
    last_key: Mapped[str] = mapped_column(
        String(80, collation="C"), Computed("lower(last_name)", persisted=True)
    )
    first_key: Mapped[str] = mapped_column(
        String(80, collation="C"), Computed("lower(first_name)", persisted=True)
    )
    address_key: Mapped[str] = mapped_column(
        String(200, collation="C"), Computed("lower(address)", persisted=True)
    )

    __mapper_args__ = {"version_id_col": Versioned.version}


# The roll's exact size as sum(delta): statement triggers on voter (migration 0013) add each insert's
# and delete's change and fold the rows no other writer holds, so it stays a few rows long. A count(*)
# of a million voters costs 50-85 ms; this sum well under a millisecond.
voter_count = Table("voter_count", Base.metadata, Column("delta", BigInteger, nullable=False))
# Each precinct's active voters as sum(delta) per precinct_id, kept the same way (migration 0016):
# counting them from the roll took 0.17 s at a million voters for every open canvass.
active_voter_count = Table(
    "active_voter_count",
    Base.metadata,
    Column("precinct_id", Integer, nullable=False, index=True),
    Column("delta", BigInteger, nullable=False),
)


class CheckIn(Base):
    """A voter was issued a ballot. Never linked to how they voted (no contest, no choice here).

    A mistaken check-in is voided (who, when, why), never deleted; only one live (not voided)
    check-in per voter and election. A provisional one is pending until a manager accepts or
    rejects it, with a reason."""

    __tablename__ = "check_in"
    __table_args__ = (
        CheckConstraint(one_of("method", CHECK_IN_METHODS), name="method"),
        CheckConstraint(one_of("provisional_status", PROVISIONAL_STATUSES), name="provisional_status"),
        CheckConstraint(
            "(method = 'provisional') = (provisional_status IS NOT NULL)", name="provisional_status_method"
        ),
        CheckConstraint(
            "(decided_at IS NULL) = (decided_by_id IS NULL)"
            " AND (decided_at IS NULL) = (decision_reason IS NULL)",
            name="decided_together",
        ),
        CheckConstraint(
            "(coalesce(provisional_status, 'pending') = 'pending') = (decided_at IS NULL)",
            name="decided_unless_pending",
        ),
        CheckConstraint(
            "(voided_at IS NULL) = (voided_by_id IS NULL) AND (voided_at IS NULL) = (void_reason IS NULL)",
            name="voided_together",
        ),
        CheckConstraint("void_reason IS NULL OR length(btrim(void_reason)) > 0", name="void_reason_given"),
        Index(
            "uq_check_in_voter_election_live",
            "voter_id",
            "election_id",
            unique=True,
            postgresql_where=text("voided_at IS NULL"),
        ),
        Index("ix_check_in_election_precinct", "election_id", "precinct_id"),
        # The provisional ballots that stand (migration 0017): read without scanning every check-in.
        Index(
            "ix_check_in_provisional",
            "election_id",
            "precinct_id",
            "provisional_status",
            postgresql_where=text("method = 'provisional' AND voided_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    voter_id: Mapped[int] = mapped_column(ForeignKey("voter.id"))
    election_id: Mapped[int] = mapped_column(ForeignKey("election.id"))
    # The voter's precinct when the ballot was issued: turnout stays right if they move later.
    precinct_id: Mapped[int] = mapped_column(ForeignKey("precinct.id"))
    method: Mapped[str] = mapped_column(String(16))
    checked_in_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    # Provisional ballots only: pending, accepted or rejected (NULL for every other method).
    provisional_status: Mapped[str | None] = mapped_column(String(16))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_reason: Mapped[str | None] = mapped_column(String(120))
    voided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    voided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    void_reason: Mapped[str | None] = mapped_column(String(300))


class PrecinctReturn(Base):
    """One version of a precinct's figures for one contest and one counting group (voting method).
    Amendments add a version."""

    __tablename__ = "precinct_return"
    __table_args__ = (
        CheckConstraint(one_of("status", RETURN_STATUSES), name="status"),
        CheckConstraint("ballots_cast >= 0", name="ballots_cast"),
        CheckConstraint("overvotes >= 0", name="overvotes"),
        CheckConstraint("undervotes >= 0", name="undervotes"),
        CheckConstraint("revision >= 1", name="revision"),
        CheckConstraint("verified_by_id IS NULL OR verified_by_id <> entered_by_id", name="four_eyes"),
        CheckConstraint("(status = 'verified') = (verified_by_id IS NOT NULL)", name="verified_has_verifier"),
        UniqueConstraint(
            "election_id",
            "precinct_id",
            "contest_id",
            "method",
            "revision",
            name="uq_precinct_return_revision",
        ),
        ForeignKeyConstraint(
            ["contest_id", "election_id"],
            ["contest.id", "contest.election_id"],
            name="fk_precinct_return_contest_election",
        ),
        # Only a method the election counts (removing a counted method with returns is refused).
        ForeignKeyConstraint(
            ["election_id", "method"],
            ["counting_group.election_id", "counting_group.method"],
            name="fk_precinct_return_counting_group",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    election_id: Mapped[int] = mapped_column(Integer)
    precinct_id: Mapped[int] = mapped_column(ForeignKey("precinct.id"))
    contest_id: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(16))
    revision: Mapped[int] = mapped_column(Integer, server_default="1")
    ballots_cast: Mapped[int] = mapped_column(Integer)
    overvotes: Mapped[int] = mapped_column(Integer, server_default="0")
    undervotes: Mapped[int] = mapped_column(Integer, server_default="0")
    status: Mapped[str] = mapped_column(String(16), server_default="entered")
    entered_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ReturnRekey(Base):
    """A blind re-keying of a return that did not match it: which fields differed and what was
    keyed. The first mismatch asks for those fields again; a second one waits for a manager, who
    sees both entries side by side. A match verifies the return and is not kept here."""

    __tablename__ = "return_rekey"
    __table_args__ = (
        CheckConstraint("attempt >= 1", name="attempt"),
        UniqueConstraint("return_id", "attempt", name="uq_return_rekey_attempt"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    return_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("precinct_return.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    keyed_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    keyed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    figures: Mapped[dict[str, Any]] = mapped_column(JSONB)  # what was keyed (earlier attempts filled in)
    fields: Mapped[list[str]] = mapped_column(JSONB)  # the keys that differed: candidate ids, totals


class ReturnVote(Base):
    __tablename__ = "return_vote"
    __table_args__ = (CheckConstraint("votes >= 0", name="votes"),)

    return_id: Mapped[int] = mapped_column(
        ForeignKey("precinct_return.id", ondelete="CASCADE"), primary_key=True
    )
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"), primary_key=True)
    votes: Mapped[int] = mapped_column(Integer)


class Incident(Base):
    __tablename__ = "incident"
    __table_args__ = (
        CheckConstraint(one_of("status", INCIDENT_STATUSES), name="status"),
        CheckConstraint("length(btrim(body)) > 0", name="body_not_blank"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    election_id: Mapped[int] = mapped_column(ForeignKey("election.id"), index=True)
    precinct_id: Mapped[int | None] = mapped_column(ForeignKey("precinct.id"))
    state_voter_id: Mapped[str | None] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default="open")
    reported_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = created_at_column()
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEvent(Base):
    """Append-only (a trigger refuses UPDATE and DELETE); each row hashes the one before it."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_entity", "entity", "entity_id"),
        Index("ix_audit_event_user", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    username: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class CertifiedResult(Base):
    """The canvass as it stood when the election was certified: every name and figure the reports
    and exports print, frozen (a trigger refuses UPDATE and DELETE), with the SHA-256 of its
    canonical JSON, which the certification's audit event carries too."""

    __tablename__ = "certified_result"

    election_id: Mapped[int] = mapped_column(ForeignKey("election.id"), primary_key=True)
    certified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    certified_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    record: Mapped[dict[str, Any]] = mapped_column(JSONB)
    sha256: Mapped[str] = mapped_column(String(64))


IMPORT_STATUSES = ("uploaded", "staging", "validating", "invalid", "validated", "loading", "loaded", "failed")


class ImportJob(Base):
    """One voter-file import: its file, mapping, progress and outcome (read by every worker)."""

    __tablename__ = "import_job"
    __table_args__ = (
        CheckConstraint(one_of("status", IMPORT_STATUSES), name="status"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = created_at_column()
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    filename: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(String(500))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    encoding: Mapped[str] = mapped_column(String(16))
    delimiter: Mapped[str] = mapped_column(String(1))
    date_format: Mapped[str] = mapped_column(String(8), server_default="iso")
    header: Mapped[list[str]] = mapped_column(JSONB)
    # field -> column index, or a list of indexes joined with spaces (an address in parts)
    mapping: Mapped[dict[str, Any]] = mapped_column(JSONB)
    has_header: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    preset: Mapped[str] = mapped_column(String(80), server_default="")
    # Code lists: {"status": {code: status}, "party": {code: abbreviation or ""}, "precinct": {code: code}}
    codes: Mapped[dict[str, dict[str, str]]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    status: Mapped[str] = mapped_column(String(16), server_default="uploaded")
    phase: Mapped[str] = mapped_column(String(40), server_default="")
    progress: Mapped[float] = mapped_column(Float, server_default="0")
    rows_done: Mapped[int] = mapped_column(BigInteger, server_default="0")
    counts: Mapped[dict[str, int]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    message: Mapped[str] = mapped_column(Text, server_default="")
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ImportPreset(Base):
    """A column mapping saved under a name: fields by column name, date format and code lists."""

    __tablename__ = "import_preset"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    fields: Mapped[dict[str, Any]] = mapped_column(JSONB)  # field -> column name, or a list of names
    date_format: Mapped[str] = mapped_column(String(8))
    codes: Mapped[dict[str, dict[str, str]]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = created_at_column()
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))


class ImportIssue(Base):
    """A row of an import that failed a rule (kind "error") or looks like a duplicate ("duplicate")."""

    __tablename__ = "import_issue"
    __table_args__ = (
        CheckConstraint("kind IN ('error', 'duplicate')", name="kind"),
        Index("ix_import_issue_job_line", "job_id", "kind", "line"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("import_job.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))
    line: Mapped[int] = mapped_column(BigInteger)
    column_name: Mapped[str] = mapped_column(String(80))
    value: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)


# The staff a row names (who checked a voter in, voided or decided it, reported an incident), as
# aliases of User made once: an alias made per query has all its columns adapted again, 1.3 ms of
# CPU for the voter page's three.
CLERK = aliased(User, name="clerk")
VOIDER = aliased(User, name="voider")
DECIDER = aliased(User, name="decider")
REPORTER = aliased(User, name="reporter")
