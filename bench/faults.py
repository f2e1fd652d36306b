"""Election night with a database that goes away, for about two minutes (the scenario of
tests/test_faults.py, bigger): gunicorn with 2 workers against a private PostgreSQL cluster, 10
clerks checking distinct voters in as fast as the server answers them, 4 live streams and a /health
prober, while the cluster is restarted with -m fast three times, stopped for 20 s once, and
restarted once more while the clerks pause (the pools then hold connections the restart cut).

Writes bench/results/faults.json: requests, acknowledged, lost, phantom, status_counts (by code),
recovery_seconds_max (database back -> first answer below 500, per worker),
failed_after_back (check-ins refused though sent once the database was back) and
live_recovery_seconds_max (database back -> a live panel counting a check-in made after it).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from common import ROOT, write_results

from tests.faults import Scenario, run_scenario, summary

SCENARIO = Scenario(
    writers=10,
    voters=60_000,
    precincts=40,
    workers=2,
    streams=4,
    pause=0.01,
    steps=(
        ("run", 10.0),
        ("restart", 15.0),
        ("restart", 15.0),
        ("stop", 20.0),
        ("start", 20.0),
        ("restart", 15.0),
        ("quiet_restart", 10.0),
    ),
)


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tally-bench-faults-") as work:
        run = run_scenario(SCENARIO, Path(work))
    figures = summary(run)
    figures["scenario"] = {
        "writers": SCENARIO.writers,
        "workers": SCENARIO.workers,
        "streams": SCENARIO.streams,
        "voters": SCENARIO.voters,
        "steps": [list(step) for step in SCENARIO.steps],
        "seconds_under_load": round(max(a.done for a in run.answers) - min(a.sent for a in run.answers), 1),
    }
    figures["bench_seconds"] = round(time.perf_counter() - started, 1)
    path = write_results("faults", figures)
    print(json.dumps(figures, indent=2))
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
