"""Crash anywhere: `kill -9` each service at random moments while 20 files flow, restart it, repeat.

Afterwards the served KPIs equal the oracle's over the accepted input, field by field; every
file is archived and counted, or rejected with a report; nothing is counted twice; no Spark JVM
outlives its runner. The schedule is random but seeded (CHAOS_SEED, printed on failure).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import psutil
import pytest

from playcount.core.resources import RESULTS, S3_EVENTS, VALIDATED, resources
from playcount.devstack.stack import SERVICES
from playcount.ops.pipeline import queue_depths
from tests.support import world as support
from tests.support.helpers import wait_for
from tests.support.world import Running

pytestmark = [pytest.mark.chaos, pytest.mark.e2e, pytest.mark.spark]

FILES = 20
REJECTED = {6, 13}  # these two are empty files: rejected as a whole, with a report
# each kill of the runner costs a Spark cold start, so it gets fewer
KILLS = {"ingest-validator": 3, "kpi-spark-runner": 2, "dynamo-writer": 3, "query-api": 2}
STAGE_OF = {"ingest-validator": S3_EVENTS, "kpi-spark-runner": VALIDATED, "dynamo-writer": RESULTS}


def _spark_jvms(work_dir: str) -> list[int]:
    """Java processes started for this test's runners (their environment names our work dir)."""
    found = []
    for p in psutil.process_iter(["name"]):
        try:
            if "java" in (p.info["name"] or "") and p.environ().get("WORK_DIR") == work_dir:
                found.append(p.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _holding_work(settings, service: str) -> bool:
    stage = STAGE_OF.get(service)
    if stage is None:
        return False
    name = resources(settings).queue(stage).name
    return any(q.in_flight for q in queue_depths(settings) if q.name == name)


def _consumer_starts(running: Running, service: str) -> int:
    return sum(e.get("event") == "consumer.start" for e in support.log_events(running.log_dir, service))


def _moment(running: Running, rng: random.Random, service: str, starts: int) -> bool:
    """Wait for a random moment to kill `service`; True if it then holds a message.

    A quarter of the time: right now (perhaps during its start-up). Otherwise once it consumes
    again (its consumer loop has started `starts` times in all), a random 0.5-4 s later, and,
    more often than not, while it holds a message.
    """
    if rng.random() < 0.25:
        return _holding_work(running.settings, service)
    if service in STAGE_OF:
        support.wait_consuming(running.log_dir, service, starts=starts, timeout=180)
    time.sleep(rng.uniform(0.5, 4.0))
    if rng.random() < 0.6:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not _holding_work(running.settings, service):
            time.sleep(0.05)
        time.sleep(rng.uniform(0, 0.3))
    return _holding_work(running.settings, service)


def _producing(w: support.World, rng: random.Random, seed: int, name: str, max_pause: float) -> threading.Thread:
    """A thread uploading the run's FILES files (those in REJECTED empty) at random intervals."""

    def producer() -> None:
        for i in range(FILES):
            if i in REJECTED:
                w.upload_rejected(f"{name}-{i:02d}")
            else:
                w.upload_stream(f"{name}-{i:02d}", rows=rng.randint(100, 400), seed=seed + i)
            time.sleep(rng.uniform(0.5, max_pause))

    uploads = threading.Thread(target=producer)
    uploads.start()
    return uploads


def test_kill_9_anywhere_loses_nothing_and_counts_nothing_twice(settings, stack, tmp_path):
    seed = int(os.environ.get("CHAOS_SEED", random.randrange(1_000_000)))
    rng = random.Random(seed)
    # a short visibility timeout, so work held by a killed process comes back soon
    # small runner batches, so that several recomputations (and results) happen between kills
    services = stack(settings, SQS_VISIBILITY_TIMEOUT="15", RUNNER_MAX_BATCH="3")
    running = Running(settings, services, tmp_path / "logs")
    running.world = w = support.world(settings)
    support.wait_consuming(running.log_dir, "kpi-spark-runner")

    # GIVEN 20 files arriving over the run (two of them empty, to be rejected)
    uploads = _producing(w, rng, seed, "chaos", max_pause=3.0)

    # WHEN every service is killed with SIGKILL at random moments, several times, and restarted
    schedule = [name for name in SERVICES for _ in range(KILLS[name])]
    rng.shuffle(schedule)
    log = []
    # a process killed during its start-up never logs consumer.start, so the next start to wait
    # for is counted from the log at each kill, not from the number of restarts
    starts = dict.fromkeys(SERVICES, 1)
    started = time.monotonic()
    for name in schedule:
        busy = _moment(running, rng, name, starts[name])
        services.kill(name, signal.SIGKILL)
        last = (support.log_events(running.log_dir, name) or [{}])[-1].get("event")
        starts[name] = _consumer_starts(running, name) + 1
        services.start_service(name)
        log.append(f"{time.monotonic() - started:6.1f}s kill -9 {name:<16} holding a message: {busy!s:<5} last: {last}")
    uploads.join()
    assert len(w.uploads) == FILES

    # THEN, once drained: exact KPIs, every file accounted for, nothing twice
    try:
        running.settled_exactly(timeout=600)
    except AssertionError as exc:
        raise AssertionError(f"CHAOS_SEED={seed}\n" + "\n".join(log) + f"\n{exc}") from None
    print(f"CHAOS_SEED={seed}\n" + "\n".join(log))

    # and no Spark JVM outlives the runner processes that were killed
    services.stop()
    wait_for(lambda: not _spark_jvms(settings.work_dir), timeout=60, what="the killed runners' JVMs to exit")


WORKERS = ("ingest-validator", "kpi-spark-runner", "dynamo-writer")


def test_two_of_each_worker_killed_at_random_lose_nothing_and_count_nothing_twice(settings, stack, tmp_path):
    """The same proof with two instances of every worker, as the template's autoscaling runs
    them: versions, the catalog, the writer's dates and the ledger are shared between them."""
    seed = int(os.environ.get("CHAOS_SEED", random.randrange(1_000_000)))
    rng = random.Random(seed)
    knobs = {"SQS_VISIBILITY_TIMEOUT": "15", "RUNNER_MAX_BATCH": "3"}
    first = stack(settings, **knobs)
    second_work = str(tmp_path / "second")
    second = stack(settings, services=WORKERS, WORK_DIR=second_work, **knobs)
    running = Running(settings, first, tmp_path / "logs")
    running.world = w = support.world(settings)
    support.wait_consuming(running.log_dir, "kpi-spark-runner", starts=2)

    # GIVEN 20 files arriving over the run (two of them empty, to be rejected)
    uploads = _producing(w, rng, seed, "twice", max_pause=2.5)

    # WHEN workers of either instance are killed with SIGKILL at random moments and restarted
    schedule = [(name, rng.choice([first, second])) for name in WORKERS for _ in range(2)]
    rng.shuffle(schedule)
    log = []
    started = time.monotonic()
    for name, which in schedule:
        time.sleep(rng.uniform(2.0, 8.0))
        busy = _holding_work(settings, name)
        which.kill(name, signal.SIGKILL)
        which.start_service(name)
        instance = "first" if which is first else "second"
        log.append(f"{time.monotonic() - started:6.1f}s kill -9 {name:<16} ({instance}) queue in flight: {busy}")
    uploads.join()

    # THEN, once drained: exact KPIs, every file accounted for, nothing twice, no DLQ message
    try:
        running.settled_exactly(timeout=600)
    except AssertionError as exc:
        raise AssertionError(f"CHAOS_SEED={seed}\n" + "\n".join(log) + f"\n{exc}") from None
    print(f"CHAOS_SEED={seed}\n" + "\n".join(log))
    applied_by = {
        e.get("pid") for e in support.log_events(running.log_dir, "dynamo-writer") if e.get("event") == "result.applied"
    }
    assert len(applied_by) >= 2, "results were applied by more than one writer process"
    second.stop()
    first.stop()
    wait_for(
        lambda: not _spark_jvms(settings.work_dir) and not _spark_jvms(second_work),
        timeout=60,
        what="the runners' JVMs to exit",
    )
