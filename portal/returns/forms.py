"""The returns form and its figures: each contest's counts read from the form field by field, and the
tally rules they must keep (DOMAIN.md, "Tally invariants")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask_wtf import FlaskForm

from portal.formatting import number
from portal.inputs import ASCII_DIGITS
from portal.returns import methods

if TYPE_CHECKING:
    from portal.returns.queries import ContestBallot

MAX_COUNT = 10_000_000
TOTAL_FIELDS = ("ballots_cast", "overvotes", "undervotes")


class ReturnsForm(FlaskForm):
    """Only the CSRF token: the figures are read field by field (one per candidate)."""


@dataclass
class Figures:
    """Submitted figures for one contest: counts by candidate id, and the totals."""

    votes: dict[int, int]
    ballots_cast: int
    overvotes: int
    undervotes: int

    def by_key(self) -> dict[str, int]:
        figures = {str(k): v for k, v in self.votes.items()}
        figures.update({key: getattr(self, key) for key in TOTAL_FIELDS})
        return figures

    @classmethod
    def from_keys(cls, figures: dict[str, int], ballot: ContestBallot) -> Figures:
        return cls(
            votes={c.id: int(figures[str(c.id)]) for c in ballot.candidates},
            **{key: int(figures[key]) for key in TOTAL_FIELDS},
        )

    def same_as(self, other: ContestBallot) -> bool:
        latest = other.latest
        return bool(
            latest
            and (latest.ballots_cast, latest.overvotes, latest.undervotes)
            == (self.ballots_cast, self.overvotes, self.undervotes)
            and other.votes == self.votes
        )


@dataclass
class Check:
    errors: dict[str, str] = field(default_factory=dict)  # field name -> message
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def field_name(contest_id: int, key: str | int) -> str:
    return f"c{contest_id}_{key}"


def parse_figures(form, ballot: ContestBallot, only: set[str] | None = None) -> tuple[Figures | None, Check]:
    """Read one contest's figures from a form: whole numbers from 0 to 10,000,000, every field.
    With `only` (a second blind re-key), just those fields are read and the rest are taken from
    the earlier re-key."""
    check = Check()
    values: dict[str, int] = {}
    keys: list[str | int] = [c.id for c in ballot.candidates] + list(TOTAL_FIELDS)
    if only is not None:
        earlier = ballot.rekeys[-1].figures
        values = {field_name(ballot.contest.id, k): int(earlier[str(k)]) for k in keys if str(k) not in only}
        keys = [k for k in keys if str(k) in only]
    for key in keys:
        name = field_name(ballot.contest.id, key)
        raw = (form.get(name) or "").strip().replace(",", "")
        if raw == "":
            check.errors[name] = "Enter a number (0 if none)."
        elif not ASCII_DIGITS.fullmatch(raw):  # not isdigit(): it takes "²" and full-width digits
            check.errors[name] = (
                "Whole numbers only, 0 or more."
                if ASCII_DIGITS.fullmatch(raw.removeprefix("-"))
                else "Not a number. Digits 0-9 only."
            )
        elif len(raw) > 9 or int(raw) > MAX_COUNT:
            check.errors[name] = "Implausibly large."
        else:
            values[name] = int(raw)
    if check.errors:
        return None, check
    contest_id = ballot.contest.id
    figures = Figures(
        votes={c.id: values[field_name(contest_id, c.id)] for c in ballot.candidates},
        ballots_cast=values[field_name(contest_id, "ballots_cast")],
        overvotes=values[field_name(contest_id, "overvotes")],
        undervotes=values[field_name(contest_id, "undervotes")],
    )
    return figures, check


def check_figures(figures: Figures, ballot: ContestBallot, check_ins: int, check: Check) -> Check:
    """The tally rules for one contest in one precinct."""
    contest = ballot.contest
    expected = figures.ballots_cast * contest.vote_for
    counted = sum(figures.votes.values()) + figures.overvotes + figures.undervotes
    if counted != expected:
        check.errors[field_name(contest.id, "ballots_cast")] = (
            f"Votes {number(sum(figures.votes.values()))} + overvotes {number(figures.overvotes)} "
            f"+ undervotes {number(figures.undervotes)} = {number(counted)}, "
            f"but ballots cast × vote for {contest.vote_for} = {number(expected)}."
        )
    if figures.ballots_cast > check_ins:  # (none checked in is the largest excess of all)
        label = methods.label(ballot.method)
        check.warnings.append(
            f"{contest.office_title}: {number(figures.ballots_cast)} {label} ballots cast "
            + (
                f"but only {number(check_ins)} {label} voters checked in at this precinct."
                if check_ins
                else f"but no {label} voter has checked in at this precinct."
            )
        )
    return check
