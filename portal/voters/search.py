"""Keyset search over the voter roll.

One search box: a voter ID prefix ("V0001234"), an address prefix (starts with a digit: "12 Main"),
or a name ("smith", "smith, jo", "smith jo": last-name prefix, then first-name prefix). Filters for
precinct, status and party. Sorts by name, voter ID or registration date, each way. Pages are
keyset cursors over the sort key, so page 18,000 costs what page 1 costs.

The total is exact where that is cheap: the whole roll (kept by triggers in `voter_count`: a
count(*) of a million voters costs 50-85 ms, the sum well under 1 ms), and any search within one
precinct (an index range of one precinct's voters). Anything else is counted only up to COUNT_CAP;
past it, a filter by status or party says "about N" from the planner's estimate (its statistics
hold those values' frequencies: within 1% at a million voters), while a name, voter-ID or address
prefix says "more than 1,000": the estimates for prefixes were 46x off ("sm": 98 for 4,557).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    SQLColumnExpression,
    and_,
    false,
    func,
    literal,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from portal.models import VOTER_STATUSES, Party, Precinct, Voter, voter_count

COUNT_CAP = 1000
PAGE_SIZE = 50
VOTER_ID_QUERY = re.compile(r"^[A-Za-z]{0,3}\d{2,}[A-Za-z0-9]*$")

LAST = Voter.last_key
FIRST = Voter.first_key
ADDRESS = Voter.address_key

SORTS: dict[str, list[SQLColumnExpression[Any]]] = {
    "name": [LAST, FIRST, Voter.id],
    "voter_id": [Voter.state_voter_id],
    "registered": [Voter.registration_date, Voter.id],
}
SORT_LABELS = {"name": "Name", "voter_id": "Voter ID", "registered": "Registered"}


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass
class VoterQuery:
    q: str = ""
    precinct: str = ""  # precinct code
    status: str = ""
    party: str = ""  # abbreviation, or "none"
    sort: str = "name"
    after: str = ""
    before: str = ""

    @classmethod
    def from_args(cls, args) -> VoterQuery:
        query = cls(**{name: (args.get(name) or "").strip()[:100] for name in cls.__dataclass_fields__})
        if query.sort.removeprefix("-") not in SORTS:
            query.sort = "name"
        if query.status not in VOTER_STATUSES:
            query.status = ""
        return query

    def args(self, **changes: str) -> dict[str, str]:
        """The non-empty parameters, for URLs (so every search can be bookmarked)."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__} | changes
        if values.get("sort") == "name":
            values["sort"] = ""
        return {k: v for k, v in values.items() if v}

    @property
    def mode(self) -> str:
        if not self.q:
            return "all"
        if VOTER_ID_QUERY.match(self.q):
            return "voter_id"
        if self.q[0].isdigit():
            return "address"
        return "name"


@dataclass
class VoterRow:
    voter: Voter
    precinct_code: str
    party: str


@dataclass
class VoterPage:
    rows: list[VoterRow]
    count: int
    count_capped: bool  # more than `count` match (an estimate, or the cap)
    count_estimated: bool = False  # `count` is the planner's estimate: "about N"
    next_cursor: str = ""
    prev_cursor: str = ""
    notes: list[str] = field(default_factory=list)


def encode_cursor(values: list[Any]) -> str:
    plain = [v.isoformat() if isinstance(v, date) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> list[Any] | None:
    """The sort-key values of a cursor, or None when it is not one of ours for this sort."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    key = sort.removeprefix("-")
    if not isinstance(values, list) or len(values) != len(SORTS[key]):
        return None
    try:
        if key == "registered":
            return [date.fromisoformat(values[0]), int(values[1])]
        if key == "name":
            return [str(values[0]), str(values[1]), int(values[2])]
        return [str(values[0])]
    except (TypeError, ValueError):
        return None


def _sort_values(voter: Voter, sort: str) -> list[Any]:
    key = sort.removeprefix("-")
    if key == "name":
        return [voter.last_key, voter.first_key, voter.id]
    if key == "voter_id":
        return [voter.state_voter_id]
    return [voter.registration_date, voter.id]


async def _filters(session: AsyncSession, query: VoterQuery, notes: list[str]) -> list[ColumnElement]:
    conditions: list[ColumnElement] = []
    mode = query.mode
    if mode == "voter_id":
        conditions.append(Voter.state_voter_id.like(_like_prefix(query.q.upper())))
    elif mode == "address":
        conditions.append(ADDRESS.like(_like_prefix(query.q.lower())))
    elif mode == "name":
        parts = [p for p in re.split(r"[,\s]+", query.q.lower()) if p]
        conditions.append(LAST.like(_like_prefix(parts[0])))
        if len(parts) > 1:
            conditions.append(FIRST.like(_like_prefix(parts[1])))
    if query.precinct:
        precinct_id = await session.scalar(select(Precinct.id).where(Precinct.code == query.precinct.upper()))
        if precinct_id is None:
            notes.append(f"There is no precinct {query.precinct}.")
            conditions.append(false())
        else:
            conditions.append(Voter.precinct_id == precinct_id)
    if query.status:
        conditions.append(Voter.status == query.status)
    if query.party == "none":
        conditions.append(Voter.party_id.is_(None))
    elif query.party:
        party_id = await session.scalar(select(Party.id).where(Party.abbreviation == query.party.upper()))
        conditions.append(Voter.party_id == party_id if party_id else false())
    return conditions


def voter_rows() -> Select:
    """Voters with their precinct code and party abbreviation."""
    return (
        select(Voter, Precinct.code, Party.abbreviation)
        .join(Precinct, Precinct.id == Voter.precinct_id)
        .outerjoin(Party, Party.id == Voter.party_id)
    )


def keyset(statement: Select, sort: str, cursor: list[Any] | None, *, backwards: bool = False) -> Select:
    """Order `statement` by the sort key and start after (or, backwards, before) `cursor`."""
    columns = SORTS[sort.removeprefix("-")]
    descending = sort.startswith("-")
    if cursor is not None:
        row_key = tuple_(*columns) if len(columns) > 1 else columns[0]
        bound = tuple_(*[literal(v) for v in cursor]) if len(columns) > 1 else literal(cursor[0])
        forward = descending == backwards
        statement = statement.where(row_key > bound if forward else row_key < bound)
    reverse = descending != backwards
    return statement.order_by(*[c.desc() if reverse else c.asc() for c in columns])


async def search_voters(session: AsyncSession, query: VoterQuery, *, limit: int = PAGE_SIZE) -> VoterPage:
    """One page of voters matching `query`, with cursors to the next and previous pages."""
    notes: list[str] = []
    conditions = await _filters(session, query, notes)
    after = decode_cursor(query.after, query.sort) if query.after else None
    before = decode_cursor(query.before, query.sort) if query.before and not after else None
    backwards = before is not None
    # First the page's keys (an index-only scan: filters read INCLUDEd columns), then its rows.
    keys = select(Voter.id)
    if conditions:
        keys = keys.where(and_(*conditions))
    keys = keyset(keys, query.sort, after or before, backwards=backwards).limit(limit + 1)
    page_keys = keys.cte("page_keys").prefix_with("MATERIALIZED")
    page_query = voter_rows().join(page_keys, page_keys.c.id == Voter.id)
    page_query = keyset(page_query, query.sort, None, backwards=backwards)
    result = list((await session.execute(page_query)).all())
    more = len(result) > limit
    result = result[:limit]
    if backwards:
        result.reverse()
    rows = [VoterRow(voter, code, party or "") for voter, code, party in result]

    if not more and not after and not before:
        page = VoterPage(rows, len(rows), False, notes=notes)  # everything is on this page
    else:
        page = VoterPage(rows, *await count_voters(session, query, conditions), notes=notes)
    if rows:
        has_next = more if not backwards else True
        has_prev = bool(after) or (backwards and more)
        if has_next:
            page.next_cursor = encode_cursor(_sort_values(rows[-1].voter, query.sort))
        if has_prev:
            page.prev_cursor = encode_cursor(_sort_values(rows[0].voter, query.sort))
    return page


async def roll_size(session: AsyncSession) -> int:
    """Voters on the roll, exactly (kept by statement triggers on voter: migration 0013)."""
    return int((await session.execute(select(func.coalesce(func.sum(voter_count.c.delta), 0)))).scalar_one())


async def count_voters(
    session: AsyncSession, query: VoterQuery, conditions: list[ColumnElement]
) -> tuple[int, bool, bool]:
    """(count, capped, estimated) for the voters matching `conditions`: exact for the whole roll
    and within a precinct; else exact up to COUNT_CAP, then the planner's estimate for a status or
    party filter, or COUNT_CAP with `capped` for a prefix search."""
    if not conditions:
        return await roll_size(session), False, False
    matching = select(Voter.id).where(and_(*conditions))
    if query.precinct:  # one precinct's voters: an index range (ix_voter_precinct_name)
        everyone = await session.execute(select(func.count()).select_from(matching.subquery()))
        return everyone.scalar_one(), False, False
    first_few = select(func.count()).select_from(matching.limit(COUNT_CAP + 1).subquery())
    count = (await session.execute(first_few)).scalar_one()
    if count <= COUNT_CAP:
        return count, False, False
    if query.q:
        return COUNT_CAP, True, False
    estimate = await planner_estimate(session, matching)
    if estimate > COUNT_CAP:
        return round_estimate(estimate), False, True
    return COUNT_CAP, True, False


async def planner_estimate(session: AsyncSession, statement: Select) -> int:
    """The planner's row estimate for `statement` (EXPLAIN, nothing run). Only for conditions made
    of the portal's own values (status names, party ids): they are inlined as literals."""
    sql = statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    plan = await session.scalar(text(f"EXPLAIN (FORMAT JSON) {sql}"))
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


def round_estimate(estimate: int) -> int:
    """Two significant figures: an estimate should not look exact (311,212 -> 310,000)."""
    digits = len(str(estimate)) - 2
    return round(estimate, -digits) if digits > 0 else estimate


async def voter_row(session: AsyncSession, voter_id: int) -> VoterRow | None:
    """One voter as a list row (with precinct code and party)."""
    found = (await session.execute(voter_rows().where(Voter.id == voter_id))).first()
    return VoterRow(found[0], found[1], found[2] or "") if found else None
