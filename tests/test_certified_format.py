"""A canvass certified before results were kept by voting method (record format 1) prints the same
bytes forever: its CSVs and NIST export byte for byte, its report pages figure for figure.

The files under tests/golden/format1/ were written by the code of the day the format changed
(`GOLDEN_WRITE=1 pytest tests/test_certified_format.py` writes them again: only ever on purpose).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from sqlalchemy import text

from portal.db import transaction
from tests.test_reports import REPORT_NAMES, _report_bodies, certified  # noqa: F401 - fixture

GOLDEN = Path(__file__).resolve().parent / "golden" / "format1"


def _normalised(name: str, body: bytes, election_id: int) -> bytes:
    """The page links carry the election's id, which differs from database to database; the time of
    certification is printed on the office's clock (config.toml's time_zone), not as a figure."""
    if name in REPORT_NAMES:
        body = re.sub(rb"/elections/\d+/", b"/elections/ID/", body)
        # A link to the reconciliation report, added beside the certification's table on screen.
        body = re.sub(rb'\n<p class="small d-print-none reconciliation-link">.*?</p>', b"", body)
        return re.sub(rb"Certified \d{4}-\d\d-\d\d \d\d:\d\d [A-Z+\-0-9]+\.", b"Certified TIME.", body)
    return body


def test_a_format_1_certified_record_prints_the_same_bytes(certified, client_as, run):  # noqa: F811
    election_id = certified.election.id
    if os.environ.get("GOLDEN_WRITE"):

        async def stored():
            async with transaction() as db:
                return (
                    await db.execute(
                        text("SELECT record FROM certified_result WHERE election_id = :e"), {"e": election_id}
                    )
                ).scalar_one()

        GOLDEN.mkdir(parents=True, exist_ok=True)
        (GOLDEN / "record.json").write_text(json.dumps(run(stored()), indent=1, sort_keys=True) + "\n")
        for name, body in _report_bodies(client_as("observer"), election_id).items():
            (GOLDEN / name).write_bytes(_normalised(name, body, election_id))
    record = json.loads((GOLDEN / "record.json").read_text())
    assert record["format"] == 1

    async def replace():
        async with transaction() as db:
            await db.execute(text("ALTER TABLE certified_result DISABLE TRIGGER USER"))
            await db.execute(
                text("UPDATE certified_result SET record = CAST(:r AS jsonb) WHERE election_id = :e"),
                {"r": json.dumps(record), "e": election_id},
            )
            await db.execute(text("ALTER TABLE certified_result ENABLE TRIGGER USER"))

    run(replace())
    bodies = _report_bodies(client_as("observer"), election_id)
    for name, body in bodies.items():
        golden = _normalised(name, (GOLDEN / name).read_bytes(), election_id)
        assert _normalised(name, body, election_id) == golden, name
