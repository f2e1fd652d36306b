"""Precinct data access."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit.queries import record_event, snapshot
from portal.editing import check_version, get_for_edit, insert_audited, save_changes
from portal.errors import Conflict, FieldError, NotFound
from portal.formatting import number
from portal.forms import content_lines
from portal.models import Precinct, User, Voter
from portal.voters import counts as roll

AUDITED = ("code", "name", "polling_place")
SORTS = {
    "code": Precinct.code,
    "name": Precinct.name,
    "polling_place": Precinct.polling_place,
}


class PrecinctInUse(Conflict):
    pass


def duplicate_code(code: str) -> FieldError:
    return FieldError("code", f"Precinct code {code} is already in use.")


@dataclass(frozen=True)
class PrecinctPage:
    rows: list[tuple[Precinct, int]]  # (precinct, active registered voters)
    total: int
    page: int
    pages: int


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search_precincts(
    session: AsyncSession, *, q: str = "", sort: str = "code", page: int = 1, per_page: int = 50
) -> PrecinctPage:
    """Precincts matching `q` (code or name prefix, name or polling place substring), one page."""
    query = select(Precinct)
    if q:
        pattern = f"%{_escape_like(q)}%"
        query = query.where(
            or_(
                Precinct.code.ilike(f"{_escape_like(q)}%"),
                Precinct.name.ilike(pattern),
                Precinct.polling_place.ilike(pattern),
            )
        )
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    key, descending = sort.removeprefix("-"), sort.startswith("-")
    column = SORTS.get(key, Precinct.code)
    order = [column.desc() if descending else column.asc(), Precinct.id]
    precincts = (
        await session.scalars(query.order_by(*order).limit(per_page).offset((page - 1) * per_page))
    ).all()
    counts = await registered_voters(session, [p.id for p in precincts])
    return PrecinctPage([(p, counts.get(p.id, 0)) for p in precincts], total, page, pages)


async def registered_voters(session: AsyncSession, precinct_ids: list[int]) -> dict[int, int]:
    """Active voters per precinct: derived from the roll, never typed."""
    if not precinct_ids:
        return {}
    rows = await session.execute(
        select(roll.PRECINCT, roll.active_voters())
        .where(roll.PRECINCT.in_(precinct_ids))
        .group_by(roll.PRECINCT)
    )
    return dict(rows.tuples().all())


async def get_precinct(session: AsyncSession, precinct_id: int) -> Precinct:
    """The precinct, or NotFound."""
    precinct = await session.get(Precinct, precinct_id)
    if precinct is None:
        raise NotFound("precinct")
    return precinct


async def code_taken(session: AsyncSession, code: str, *, except_id: int | None = None) -> bool:
    query = select(Precinct.id).where(Precinct.code == code)
    if except_id is not None:
        query = query.where(Precinct.id != except_id)
    return (await session.scalar(query)) is not None


async def create_precinct(session: AsyncSession, *, actor: User, data: dict[str, str]) -> Precinct:
    if await code_taken(session, data["code"]):
        raise duplicate_code(data["code"])
    precinct = Precinct(**data, updated_by_id=actor.id)
    taken = duplicate_code(data["code"])  # (a concurrent create may win the race for the code)
    return await insert_audited(
        session, precinct, actor=actor, entity="precinct", fields=AUDITED, taken=taken
    )


async def update_precinct(
    session: AsyncSession, *, actor: User, precinct_id: int, seen_version: int | None, data: dict[str, str]
) -> Precinct:
    gone = "This precinct was deleted meanwhile; nothing was saved."
    precinct = await get_for_edit(
        session, Precinct, precinct_id, seen_version, noun="precinct", fields=AUDITED, gone=gone
    )
    if await code_taken(session, data["code"], except_id=precinct_id):
        raise duplicate_code(data["code"])
    before = snapshot(precinct, AUDITED)
    for field, value in data.items():
        setattr(precinct, field, value)
    after = snapshot(precinct, AUDITED)
    taken = duplicate_code(data["code"])
    await save_changes(session, precinct, before, after, actor=actor, entity="precinct", taken=taken)
    return precinct


async def delete_precinct(
    session: AsyncSession, *, actor: User, precinct_id: int, seen_version: int | None
) -> Precinct:
    precinct = await session.get(Precinct, precinct_id, with_for_update=True)
    if precinct is None:
        raise NotFound("precinct", "This precinct was already deleted.")
    if seen_version is not None:
        await check_version(session, precinct, seen_version, noun="precinct", fields=AUDITED)
    voters = await session.scalar(select(func.count()).where(Voter.precinct_id == precinct_id))
    if voters:
        raise PrecinctInUse(
            f"{number(voters)} voters are registered in precinct {precinct.code}; move them first."
        )
    before = snapshot(precinct, AUDITED)
    code = precinct.code  # (after a failed flush the row cannot be read again)
    await session.delete(precinct)
    try:
        await session.flush()
    except IntegrityError as error:
        raise PrecinctInUse(
            f"Precinct {code} is used by an election, a return or a check-in and cannot be deleted."
        ) from error
    await record_event(
        session, actor=actor, action="delete", entity="precinct", entity_id=precinct_id, before=before
    )
    return precinct


async def list_precinct_choices(session: AsyncSession) -> list[Precinct]:
    """Every precinct, by code (for choosing participating precincts)."""
    return list((await session.scalars(select(Precinct).order_by(Precinct.code))).all())


PRECINCT_CODE = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,15}$")  # (the form's rule)
BULK_MAX_LINES = 5000


def parse_precinct_lines(text: str, taken: set[str]) -> tuple[list[dict], list[str]]:
    """Every line checked: `code, name[, polling place]`; (rows, errors with line numbers)."""
    content, problems = content_lines(text, limit=BULK_MAX_LINES, noun="precinct")
    if problems:
        return [], problems
    rows, errors = [], []
    seen: dict[str, int] = {}  # code -> line
    for n, cells in content:
        cells = [c.strip() for c in cells] + ["", ""]
        code, name, place = cells[0].upper(), cells[1], cells[2]
        problems = []
        if not PRECINCT_CODE.match(code):
            problems.append(f"code “{cells[0][:20]}” must be 1 to 16 letters, digits or hyphens")
        elif code in taken:
            problems.append(f"precinct {code} already exists")
        elif code in seen:
            problems.append(f"code {code} is also on line {seen[code]}")
        if not name:
            problems.append("the name is missing")
        elif len(name) > 120:
            problems.append("the name is longer than 120 characters")
        if len(place) > 200:
            problems.append("the polling place is longer than 200 characters")
        if len([c for c in cells if c]) > 3:
            problems.append("more than 3 values (code, name, polling place)")
        if problems:
            errors.append(f"Line {n}: " + "; ".join(problems) + ".")
        else:
            seen[code] = n
            rows.append({"code": code, "name": name, "polling_place": place})
    return rows, errors


async def bulk_add_precincts(session: AsyncSession, *, actor: User, text: str) -> tuple[int, list[str]]:
    """All lines or none: (how many were added, the errors). One audit event for the whole list."""
    taken = set((await session.scalars(select(Precinct.code))).all())
    rows, errors = parse_precinct_lines(text, taken)
    if errors:
        return 0, errors
    session.add_all(Precinct(**row, updated_by_id=actor.id) for row in rows)
    try:
        await session.flush()
    except IntegrityError as error:  # a precinct added meanwhile by someone else
        raise Conflict(
            "Someone added one of these codes a moment ago. Nothing was added; try again."
        ) from error
    await record_event(
        session,
        actor=actor,
        action="bulk_create",
        entity="precinct",
        entity_id="bulk",
        after={"count": len(rows), "precincts": rows},
    )
    return len(rows), []
