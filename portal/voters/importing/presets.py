"""Saved presets: a job's mapping (by column name), date format and code lists kept under a name,
so the next file with those columns maps itself."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit.queries import record_event
from portal.models import ImportJob, User
from portal.voters.layouts import LAYOUTS

PRESET_NAME = re.compile(r"^[\w][\w .()/-]{0,79}$")


def preset_name_problem(name: str) -> str | None:
    if not PRESET_NAME.match(name):
        return (
            "Name the preset with 1 to 80 letters, digits, spaces or . ( ) / - (e.g. “County export 2026”)."
        )
    if name in LAYOUTS or name == "auto":
        return f"“{name}” is the name of a published layout; choose another."
    return None


async def save_preset(session: AsyncSession, job: ImportJob, name: str, actor: User | None) -> bool:
    """Save the job's mapping (by column name), date format and code lists as `name`; True when
    it replaced a preset of that name."""
    from portal.models import ImportPreset
    from portal.voters.importing.sniff import fields_by_name

    preset = await session.scalar(select(ImportPreset).where(ImportPreset.name == name))
    replaced = preset is not None
    if preset is None:
        preset = ImportPreset(name=name, created_by_id=actor.id if actor else None)
        session.add(preset)
    preset.fields = fields_by_name(job.header, job.mapping)
    preset.date_format, preset.codes = job.date_format, job.codes or {}
    await session.flush()
    await record_event(
        session,
        actor=actor,
        action="update" if replaced else "create",
        entity="import_preset",
        entity_id=preset.id,
        after={
            "name": name,
            "fields": preset.fields,
            "date_format": preset.date_format,
            "codes": preset.codes,
        },
    )
    return replaced


def preset_title(name: str) -> str:
    return LAYOUTS[name].title if name in LAYOUTS else f"your saved preset “{name}”" if name else ""
