"""Election night survives a database failure (tests/faults.py runs it; bench/faults.py runs it
bigger). Two gunicorn workers, clerks checking voters in, live streams held, and a private
PostgreSQL cluster restarted with -m fast, then stopped for a few seconds and started again."""

from __future__ import annotations

import pytest

from tests.faults import Scenario, run_scenario, summary


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    run = run_scenario(Scenario(), tmp_path_factory.mktemp("faults"))
    figures = summary(run)
    print("fault run:", figures)
    return figures


def test_no_acknowledged_check_in_is_lost(figures):
    assert figures["acknowledged"] > 100
    assert figures["lost"] == 0


def test_no_check_in_is_stored_behind_a_nothing_was_saved(figures):
    assert figures["phantom"] == 0
    assert figures["audit_check_in_events"] == figures["stored"]
    assert figures["audit_chain_intact"]


def test_the_outage_gives_503_never_500(figures):
    assert figures["server_errors"] == 0, figures["status_counts"]
    assert set(figures["status_counts"]) <= {"200", "503"}, figures["status_counts"]
    assert figures["status_counts"].get("503", 0) > 0  # the outage really happened to the clerks
    assert figures["health_status_counts"].get("503", 0) > 0


def test_every_worker_serves_again_within_5_s(figures):
    assert figures["workers"] == 2
    assert figures["database_outages"] == 3
    assert figures["recovery_seconds_max"] <= 5


def test_once_the_database_is_back_no_request_fails(figures):
    """Pooled connections cut by the restart are replaced before use, not handed to a request."""
    assert figures["failed_after_back"] == 0


def test_live_panels_show_a_change_made_after_the_restart_within_5_s(figures):
    assert figures["live_recovery_seconds_max"] <= 5


def test_a_new_stream_during_the_outage_is_told_to_retry_instead_of_hanging(figures):
    assert figures["new_stream_stale_seconds_max"] <= 5
