"""Dependency outage: AWS (the emulator) unreachable for 10 s in the middle of a run.

moto keeps its state in memory, so it cannot be restarted without wiping the world. What this
test does instead: every service reaches the emulator through a TCP proxy (test code); the
proxy is cut for 10 s (new connections refused, open ones aborted) while files are in flight,
and files keep arriving during the cut (uploaded straight to the emulator, as a producer would
to S3). Services must log it, report not-ready, retry with backoff, and recover on their own
with nothing lost and nothing counted twice.
"""

from __future__ import annotations

import re
import time
import urllib.request

import pytest

from playcount.devstack import emulator as emu
from playcount.ops.pipeline import counters
from tests.support import world as support
from tests.support.helpers import get_json, wait_for
from tests.support.proxy import proxy_to
from tests.support.world import Running

pytestmark = [pytest.mark.e2e, pytest.mark.spark]

OUTAGE_SECONDS = 10
WORKERS = ("ingest-validator", "kpi-spark-runner", "dynamo-writer")


def _queue_up(port: int) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return None
    m = re.search(r'^playcount_queue_up\{service="ingest-validator"\} ([0-9.]+)$', text, re.M)
    return float(m.group(1)) if m else None


def test_services_ride_out_a_10s_outage_and_lose_nothing(settings, stack, tmp_path):
    with proxy_to(settings.aws_endpoint_url or "") as proxy:
        # GIVEN the four services talking to AWS only through the proxy (the validator with metrics)
        via = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}", "SQS_VISIBILITY_TIMEOUT": "20"}
        metrics_port = emu.free_port()
        validator = stack(settings, services=("ingest-validator",), METRICS_PORT=str(metrics_port), **via)
        services = stack(settings, services=("kpi-spark-runner", "dynamo-writer", "query-api"), **via)
        running = Running(settings, services, tmp_path / "logs")
        running.world = w = support.world(settings)
        api = running.api
        support.wait_consuming(running.log_dir, "kpi-spark-runner")
        wait_for(lambda: get_json(f"{api}/ready")[0] == 200, timeout=60, what="API ready")

        # WHEN the emulator becomes unreachable while files are being processed ...
        for i in range(3):
            w.upload_stream(f"before-{i}", rows=300, seed=300 + i)
        wait_for(lambda: counters(settings)["files_received"] > w.baseline["files_received"], what="work in flight")
        proxy.cut()
        cut_at = time.monotonic()
        # ... and more files arrive during the outage
        for i in range(2):
            w.upload_stream(f"during-{i}", rows=300, seed=310 + i)

        # THEN every service reports not-ready while it lasts
        wait_for(lambda: get_json(f"{api}/ready")[0] == 503, timeout=OUTAGE_SECONDS, what="API /ready 503")
        wait_for(lambda: _queue_up(metrics_port) == 0, timeout=OUTAGE_SECONDS, what="validator not-ready gauge")
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut_at)))
        proxy.restore()
        restored_at = time.monotonic()

        # AND recovers without any manual action, losing nothing and counting nothing twice
        wait_for(lambda: get_json(f"{api}/ready")[0] == 200, timeout=60, what="API ready again")
        ready_after = time.monotonic() - restored_at
        running.settled_exactly(timeout=300)
        exact_after = time.monotonic() - restored_at
        print(f"outage {OUTAGE_SECONDS} s: API ready {ready_after:.1f} s after, KPIs exact {exact_after:.1f} s after")
        assert _queue_up(metrics_port) == 1
        for s in (validator, services):  # stop them before the proxy goes, or they log a second outage
            assert set(s.stop().values()) == {0}

    # the outage is in each worker's log, in words an operator can act on
    for name in WORKERS:
        events = {e.get("event") for e in support.log_events(running.log_dir, name)}
        assert events & {"consumer.queue_unreachable", "aws.unreachable"}, f"{name} did not log the outage"
    validator = {e.get("event") for e in support.log_events(running.log_dir, "ingest-validator")}
    assert "consumer.reconnected" in validator
