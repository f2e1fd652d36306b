"""The election lifecycle: forward moves only, each by the roles allowed to make it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Move:
    to: str
    label: str
    consequence: str
    roles: tuple[str, ...]
    button: str


MOVES: dict[str, Move] = {
    "draft": Move(
        "open",
        "Open the election",
        "Check-in and returns entry start. The ballot (contests, candidates and their order) "
        "can no longer change; names and candidate status can still be corrected.",
        ("admin", "manager"),
        "btn-success",
    ),
    "open": Move(
        "closed",
        "Close the election",
        "Check-in stops. Each precinct's registered voters are fixed as of now for this election's "
        "turnout. Returns can still be entered, corrected and verified.",
        ("admin", "manager"),
        "btn-warning",
    ),
    "closed": Move(
        "certified",
        "Certify the results",
        "After certification nothing in this election can be edited, by anyone. The canvass is "
        "recorded as it stands, with its fingerprint in the audit trail: every report and export of "
        "it will read the same from now on, whatever later changes on the roll, a precinct or a party.",
        ("admin", "manager"),
        "btn-primary",
    ),
}


def next_move(status: str) -> Move | None:
    return MOVES.get(status)
