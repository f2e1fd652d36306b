"""Candidates added in bulk: lines of CSV (`code, ballot name[, party abbreviation[, write-in]]`)
parsed and checked against the election's codes and the parties (`queries.bulk_add_candidates` adds
them, all lines or none)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.contests.forms import CANDIDATE_CODE
from portal.forms import content_lines
from portal.models import Candidate, Party

BULK_MAX_LINES = 500
TRUE_WORDS = {"yes", "y", "true", "1", "x", "write-in", "writein"}
FALSE_WORDS = {"", "no", "n", "false", "0"}


@dataclass(frozen=True)
class CandidateRow:
    line: int
    code: str
    ballot_name: str
    party_id: int | None
    write_in: bool


async def parse_candidate_lines(
    session: AsyncSession, election_id: int, text: str
) -> tuple[list[CandidateRow], list[str]]:
    """Validate every line: `code, ballot name[, party abbreviation[, write-in]]`. Returns the rows
    and the errors (each with its line number); a header line starting with "code" is skipped."""
    import re

    parties = {
        abbr.upper(): pid
        for pid, abbr in (await session.execute(select(Party.id, Party.abbreviation))).tuples()
    }
    taken = set(
        (await session.scalars(select(Candidate.code).where(Candidate.election_id == election_id))).all()
    )
    rows: list[CandidateRow] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    content, problems = content_lines(text, limit=BULK_MAX_LINES, noun="candidate")
    if problems:
        return [], problems
    for n, cells in content:
        cells = [c.strip() for c in cells] + ["", "", ""]
        code, name, party, write_in = cells[0].upper(), cells[1], cells[2].upper(), cells[3].lower()
        problems = []
        if not re.match(CANDIDATE_CODE, code):
            problems.append(f"code “{cells[0][:30]}” must be 1 to 24 letters, digits or hyphens")
        elif code in taken:
            problems.append(f"code {code} is already used in this election")
        elif code in seen:
            problems.append(f"code {code} is also on line {seen[code]}")
        if not name:
            problems.append("the ballot name is missing")
        elif len(name) > 160:
            problems.append("the ballot name is longer than 160 characters")
        if party and party not in parties:
            problems.append(f"no party with the abbreviation {party[:12]}")
        if write_in not in TRUE_WORDS | FALSE_WORDS:
            problems.append(f"write-in must be yes or no, not “{cells[3][:12]}”")
        if len([c for c in cells if c]) > 4:
            problems.append("more than 4 columns")
        if problems:
            errors.append(f"Line {n}: " + "; ".join(problems) + ".")
            continue
        seen[code] = n
        rows.append(CandidateRow(n, code, name, parties.get(party), write_in in TRUE_WORDS))
    return rows, errors
