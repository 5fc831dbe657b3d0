"""Two or more of a worker, the same guarantees (issue: N instances).

Each worker here is a real process (`python -m playcount.<service>.main`) with its own
WORK_DIR, against one emulator, as the template's autoscaling runs them.
"""

from __future__ import annotations

import pytest

from tests.support import world as support
from tests.support.world import Running

pytestmark = [pytest.mark.e2e, pytest.mark.spark]

SLOW_CLOCK = str(-3600.0)  # an hour behind: NTP gone wrong on one host


def test_a_runner_whose_clock_is_behind_never_hides_newer_data(settings, stack, tmp_path):
    # GIVEN the pipeline with one runner whose clock is right
    services = stack(settings, services=("ingest-validator", "dynamo-writer", "query-api"))
    running = Running(settings, services, tmp_path / "logs")
    first = stack(settings, services=("kpi-spark-runner",), WORK_DIR=str(tmp_path / "runner-a"))
    support.wait_consuming(running.log_dir, "kpi-spark-runner", starts=1)
    running.world = w = support.world(settings)
    w.upload_stream("first", rows=300, seed=201)
    running.settled_exactly()

    # WHEN the same dates are recomputed by another runner whose clock is an hour behind
    assert set(first.stop().values()) == {0}
    stack(
        settings,
        services=("kpi-spark-runner",),
        WORK_DIR=str(tmp_path / "runner-b"),
        RUNNER_CLOCK_OFFSET_SECONDS=SLOW_CLOCK,
    )
    support.wait_consuming(running.log_dir, "kpi-spark-runner", starts=2)
    w.upload_stream("second", rows=300, seed=202)

    # THEN its later computation wins: the API serves both files' listens, exactly
    running.settled_exactly()
    versions = [e["version"] for e in support.log_events(running.log_dir, "kpi-spark-runner") if "version" in e]
    assert versions == sorted(versions) and len(set(versions)) == len(versions), versions
