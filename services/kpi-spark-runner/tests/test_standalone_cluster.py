"""Scale-out: the runner service, pointed at a Spark standalone cluster (master and worker from
pyspark's own distribution, on 127.0.0.1), gives results identical to local mode's."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import IO

import numpy as np
import pyspark
import pytest

from playcount.core import aws
from playcount.core.resources import VALIDATED, resources
from playcount.devstack import generate
from playcount.devstack.emulator import free_port
from tests.support import oracle
from tests.support.helpers import wait_for

pytestmark = [pytest.mark.spark, pytest.mark.e2e]
SPARK_HOME = Path(pyspark.__file__).parent


def _java(cls: str, *args: str, log: IO[bytes]) -> subprocess.Popen[bytes]:
    # pip's pyspark has no RELEASE file, so the launcher would look for a source build; name the Scala line
    env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_SCALA_VERSION": "2.13"}
    return subprocess.Popen(
        ["java", "-Xmx512m", "-cp", f"{SPARK_HOME}/jars/*", cls, *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@pytest.fixture
def cluster(tmp_path):
    port, ui = free_port(), free_port()
    with open(tmp_path / "master.log", "wb") as master_log, open(tmp_path / "worker.log", "wb") as worker_log:
        master = _java(
            "org.apache.spark.deploy.master.Master",
            *("--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui)),
            log=master_log,
        )
        worker = _java(
            "org.apache.spark.deploy.worker.Worker",
            f"spark://127.0.0.1:{port}",
            *("--host", "127.0.0.1", "--webui-port", str(free_port()), "--cores", "2", "--memory", "1g"),
            *("--work-dir", str(tmp_path / "work")),
            log=worker_log,
        )

        def state() -> dict | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=2) as r:
                    body = json.load(r)
                return body if body.get("aliveworkers", 0) >= 1 else None
            except OSError:
                return None

        try:
            wait_for(state, timeout=180, what="a Spark worker registered with the master")
            yield f"spark://127.0.0.1:{port}", state
        finally:
            for proc in (worker, master):  # the worker ends its executors when it stops
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


def test_runner_on_a_standalone_cluster_equals_local_mode(settings, lake_state, make_runner, h, cluster, stack):
    # GIVEN metadata and two files over two dates (one event repeated across the files)
    master_url, state = cluster
    songs_t, users_t, cat = generate.dataset(seed=8, n_tracks=150, n_users=60)
    songs = oracle.metadata_from_csv(songs_t.to_pylist(), "track_id")
    users = oracle.metadata_from_csv(users_t.to_pylist(), "user_id")
    lake_state.metadata(songs, users)
    days = [dt.date(2025, 6, 24), dt.date(2025, 6, 25)]
    table = generate.streams_table(np.random.default_rng(2), cat, 4000, days)
    events = [(r["user_id"], r["track_id"], oracle.parse_time(r["listen_time"])) for r in table.to_pylist()]
    lake_state.events("f1", events[:2500])
    lake_state.events("f2", events[2400:])
    messages = [h.validated("streams", days, "f1"), h.validated("streams", days, "f2")]

    # WHEN the runner computes them in local mode, and the runner service on the cluster does too
    local = make_runner().recompute(messages)
    h.received_results(settings, wait=0)  # the local run's messages are not the cluster's
    stack(settings, services=("kpi-spark-runner",), SPARK_MASTER=master_url, SPARK_LOCAL_IP="127.0.0.1")
    sqs = aws.client(settings, "sqs")
    inbox = aws.queue_url(sqs, resources(settings).queue(VALIDATED).name)
    for m in messages:
        sqs.send_message(QueueUrl=inbox, MessageBody=m.model_dump_json())
    got: list = []
    wait_for(lambda: got.extend(h.received_results(settings)) or {r.date for _, r in got} >= set(days), timeout=420,
             what="the cluster runner's results for both dates")  # fmt: skip

    # THEN both are identical (apart from version and time), and the job ran on the cluster
    on_cluster = {r.date: r for _, r in got}
    assert h.comparable(list(on_cluster.values())) == h.comparable(local)
    assert sum(r.events for r in local) == len(set(events))
    apps = (state() or {}).get("activeapps", [])
    assert any(a.get("name") == "playcount-kpi-runner" for a in apps), "the runner is not a cluster application"
