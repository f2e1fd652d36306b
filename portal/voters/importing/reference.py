"""Reference data the file names but the portal lacks: precincts, parties and statuses found in the
checked rows, created or read as existing ones (kept in the job's code lists)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit.queries import record_event
from portal.models import ImportJob, User
from portal.voters.importing.checks import _norm_table
from portal.voters.importing.fields import ImportFailed


@dataclass
class MissingReference:
    precincts: list[tuple[str, int, str]] = field(default_factory=list)  # code, rows, name
    parties: list[tuple[str, int]] = field(default_factory=list)  # abbreviation, rows
    statuses: list[tuple[str, int]] = field(default_factory=list)  # code, rows (mapped, never created)
    unusable: list[str] = field(default_factory=list)  # codes that cannot be created

    def __bool__(self) -> bool:
        return bool(self.precincts or self.parties or self.statuses)


async def missing_reference(session: AsyncSession, job: ImportJob) -> MissingReference:
    """Precincts and parties the checked file names that are not in the portal, with their rows
    (from the kept rows of a check with row errors)."""
    from portal.precincts.queries import PRECINCT_CODE

    found = MissingReference()
    if job.status != "invalid" or not await session.scalar(
        text("SELECT to_regclass(:t) IS NOT NULL"), {"t": _norm_table(job.id)}
    ):
        return found
    norm = _norm_table(job.id)
    precincts = await session.execute(
        text(
            f"SELECT precinct, count(*), mode() WITHIN GROUP (ORDER BY precinct_name) FROM {norm} "
            "WHERE precinct IS NOT NULL AND precinct_id IS NULL GROUP BY precinct ORDER BY precinct"
        )
    )
    for code, rows, name in precincts:
        if PRECINCT_CODE.match(code):
            found.precincts.append((code, rows, (name or f"Precinct {code}")[:120]))
        else:
            found.unusable.append(code)
    parties = await session.execute(
        text(
            f"SELECT party, count(*) FROM {norm} WHERE party IS NOT NULL AND party_id IS NULL "
            "GROUP BY party ORDER BY party"
        )
    )
    found.parties = [(abbr, rows) for abbr, rows in parties if len(abbr) <= 10]
    statuses = await session.execute(
        text(
            f"SELECT upper(status), count(*) FROM {norm} "
            "WHERE status NOT IN ('active', 'inactive', 'removed') GROUP BY 1 ORDER BY 1"
        )
    )
    found.statuses = [(code, rows) for code, rows in statuses if len(code) <= 40]
    return found


async def known_reference(session: AsyncSession, missing: MissingReference) -> dict[str, list]:
    """What a missing precinct or party can be read as: the portal's precinct codes and parties."""
    from portal.models import Party, Precinct

    known: dict[str, list] = {"precincts": [], "parties": []}
    if missing.precincts:
        known["precincts"] = list(await session.scalars(select(Precinct.code).order_by(Precinct.code)))
    if missing.parties:
        known["parties"] = list(await session.scalars(select(Party).order_by(Party.name)))
    return known


async def resolve_reference(
    session: AsyncSession, job: ImportJob, actor: User | None, form
) -> dict[str, int]:
    """Apply the import page's choices for what the file names and the portal lacks: a precinct
    (`precinct_N`: blank creates it, a code reads it as that existing precinct), a party
    (`party_N`: "create", "none" or an existing abbreviation), a status (`status_N`: active,
    inactive or removed). Mapped codes go to the job's code lists (saved with a preset)."""
    from portal.models import Party, Precinct  # (the precincts and parties named so far)

    missing = await missing_reference(session, job)
    codes = {kind: dict(values) for kind, values in (job.codes or {}).items()}
    precincts = set((await session.scalars(select(Precinct.code))).all())
    parties = set((await session.scalars(select(Party.abbreviation))).all())
    create_precincts, create_parties = [], []
    for n, item in enumerate(missing.precincts):
        chosen = form.get(f"precinct_{n}", "").strip().upper()
        if not chosen:
            create_precincts.append(item)
        elif chosen in precincts:
            codes.setdefault("precinct", {})[item[0]] = chosen
        else:
            raise ImportFailed(f"There is no precinct {chosen[:20]} to read {item[0]} as.")
    for n, party in enumerate(missing.parties):
        chosen = form.get(f"party_{n}", "create")
        if chosen == "create":
            create_parties.append(party)
        elif chosen == "none" or chosen in parties:
            codes.setdefault("party", {})[party[0]] = "" if chosen == "none" else chosen
        else:
            raise ImportFailed(f"There is no party {chosen[:20]} to read {party[0]} as.")
    for n, (code, _) in enumerate(missing.statuses):
        chosen = form.get(f"status_{n}", "")
        if chosen in ("active", "inactive", "removed"):
            codes.setdefault("status", {})[code] = chosen
    mapped = sum(len(v) for v in codes.values()) - sum(len(v) for v in (job.codes or {}).values())
    missing.precincts, missing.parties = create_precincts, create_parties
    made = await _create_reference(session, job, actor, missing)
    await session.execute(update(ImportJob).where(ImportJob.id == job.id).values(codes=codes))
    if mapped:
        await record_event(
            session,
            actor=actor,
            action="map_codes",
            entity="import",
            entity_id=job.id,
            after={"codes": codes},
        )
    job.codes = codes
    return {"precincts": made[0], "parties": made[1], "mapped": mapped}


async def create_missing_reference(
    session: AsyncSession,
    job: ImportJob,
    actor: User | None,
    kinds: tuple[str, ...] = ("precincts", "parties"),
) -> tuple[int, int]:
    """Create every precinct and party (of `kinds`) the file names and the portal lacks (one audit
    event each list); (precincts, parties) created."""
    missing = await missing_reference(session, job)
    missing.precincts = missing.precincts if "precincts" in kinds else []
    missing.parties = missing.parties if "parties" in kinds else []
    return await _create_reference(session, job, actor, missing)


async def _create_reference(
    session: AsyncSession, job: ImportJob, actor: User | None, missing: MissingReference
) -> tuple[int, int]:
    from portal.models import Party, Precinct

    session.add_all(
        Precinct(code=code, name=name, polling_place="", updated_by_id=actor.id if actor else None)
        for code, _, name in missing.precincts
    )
    taken = set((await session.scalars(select(Party.name))).all())
    session.add_all(
        Party(name=abbr if abbr not in taken else f"{abbr} (from import {job.id})", abbreviation=abbr,
              updated_by_id=actor.id if actor else None)
        for abbr, _ in missing.parties
    )  # fmt: skip
    await session.flush()
    for entity, items in (("precinct", missing.precincts), ("party", missing.parties)):
        if items:
            await record_event(
                session,
                actor=actor,
                action="bulk_create",
                entity=entity,
                entity_id=f"import-{job.id}",
                after={"from_import": job.id, "codes": [item[0] for item in items]},
            )
    return len(missing.precincts), len(missing.parties)
