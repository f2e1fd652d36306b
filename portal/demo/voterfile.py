"""Writing a realistic voter CSV (for import tests and benchmarks)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from portal.demo.seed import voter_records

HEADER = [
    "Voter ID",
    "Last Name",
    "First Name",
    "Middle Name",
    "Date of Birth",
    "Address",
    "City",
    "Zip",
    "Precinct",
    "Party",
    "Status",
    "Registration Date",
]


def write_voter_csv(
    path: Path,
    count: int,
    *,
    precinct_codes: list[str],
    party_abbreviations: list[str],
    seed: int = 11,
    first_id: int = 0,
    prefix: str = "F",
    encoding: str = "utf-8",
    newline: str = "\n",
) -> Path:
    """`count` voters with IDs prefix+000000001..., in the import's default column names."""
    rng = random.Random(seed)
    codes = {n: code for n, code in enumerate(precinct_codes)}
    parties = {n: abbr for n, abbr in enumerate(party_abbreviations)}
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh, lineterminator=newline)
        writer.writerow(HEADER)
        records = voter_records(rng, count, list(codes), list(parties), start=first_id, year_only_every=0)
        for (
            vid,
            first,
            middle,
            last,
            born,
            _year,
            address,
            city,
            postal,
            precinct,
            party,
            status,
            registered,
            _,
        ) in records:
            writer.writerow(
                [
                    prefix + vid[1:],
                    last,
                    first,
                    middle,
                    born.isoformat(),
                    address,
                    city,
                    postal,
                    codes[precinct],
                    parties.get(party, "") if party is not None else "",
                    status,
                    registered.isoformat(),
                ]
            )
    return path
