"""The roll's sizes, kept by triggers (migrations 0014 and 0016), so no report counts the roll.

`voter_count` holds the whole roll and `active_voter_count` each precinct's active voters, each as a
sum of deltas that is exact in every snapshot. Counting a million voters' rows cost 50-170 ms a time.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ColumnElement, func

from portal.models import active_voter_count

PRECINCT = active_voter_count.c.precinct_id


def active_voters() -> ColumnElement[int]:
    """Active voters, summed over the `active_voter_count` rows a query selects (0 for none)."""
    return func.coalesce(func.sum(active_voter_count.c.delta), 0).cast(BigInteger)
