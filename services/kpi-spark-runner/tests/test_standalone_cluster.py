"""Scale-out: the same KPI job on a Spark standalone cluster (master + worker from pyspark's own
distribution, on 127.0.0.1) gives results identical to local mode."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pyspark
import pytest

from playcount.cli import generate
from playcount.cli.emulator import free_port
from playcount.core import lake
from playcount.runner import staging
from playcount.runner.compute import compute
from tests import oracle
from tests.helpers import wait_for

pytestmark = pytest.mark.spark
SPARK_HOME = Path(pyspark.__file__).parent
COMPUTED_AT = dt.datetime(2025, 6, 26, tzinfo=dt.UTC)
DRIVER = """
import datetime as dt, json, sys
from playcount.core.config import load_settings
from playcount.runner.compute import Inputs, compute
from playcount.runner.session import spark_session
inputs = Inputs(**json.loads(sys.argv[1]))
dates = [dt.date.fromisoformat(d) for d in json.loads(sys.argv[2])]
spark = spark_session(load_settings({"SPARK_MASTER": sys.argv[3], "SPARK_SHUFFLE_PARTITIONS": "4",
                                     "SPARK_DRIVER_MEMORY": "1g"}))
out = compute(spark, inputs, dates, 1, dt.datetime.fromisoformat(sys.argv[4]))
print("RESULT" + json.dumps([r.model_dump(mode="json") for r in out]))
spark.stop()
"""


def _java(cls: str, *args: str, log: Path) -> subprocess.Popen[bytes]:
    # pip's pyspark has no RELEASE file, so the launcher would look for a source build; name the Scala line
    env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_SCALA_VERSION": "2.13"}
    return subprocess.Popen(
        ["java", "-Xmx512m", "-cp", f"{SPARK_HOME}/jars/*", cls, *args],
        env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip


@pytest.fixture
def cluster(tmp_path):
    port, ui = free_port(), free_port()
    master = _java("org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                   "--webui-port", str(ui), log=tmp_path / "master.log")  # fmt: skip
    worker = _java("org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}", "--host", "127.0.0.1",
                   "--webui-port", str(free_port()), "--cores", "2", "--memory", "1g",
                   "--work-dir", str(tmp_path / "work"), log=tmp_path / "worker.log")  # fmt: skip

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
        for proc in (worker, master):
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_cluster_results_equal_local_results(settings, spark, cluster, tmp_path):
    master_url, state = cluster
    songs, users, cat = generate.dataset(seed=8, n_tracks=150, n_users=60)
    fs = lake.filesystem(settings)
    import pyarrow.parquet as pq

    pq.write_table(songs, lake.path(settings, lake.songs_key(settings)), filesystem=fs)
    pq.write_table(users, lake.path(settings, lake.users_key(settings)), filesystem=fs)
    days = [dt.date(2025, 6, 24), dt.date(2025, 6, 25)]
    table = generate.streams_table(np.random.default_rng(2), cat, 4000, days)
    events = [(r["user_id"], r["track_id"], oracle.parse_time(r["listen_time"])) for r in table.to_pylist()]
    import pyarrow as pa

    for day in days:
        rows = [e for e in events if e[2].date() == day]
        part = pa.table({"user_id": [r[0] for r in rows], "track_id": [r[1] for r in rows],
                         "listen_time": pa.array([r[2] for r in rows], pa.timestamp("us", tz="UTC"))})  # fmt: skip
        pq.write_table(part, lake.path(settings, lake.events_key(settings, day, "f1")), filesystem=fs)
    inputs = staging.stage(settings, fs, days, tmp_path / "staged")

    local = compute(spark, inputs, days, 1, COMPUTED_AT)
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(inputs.__dict__, default=list),
         json.dumps([d.isoformat() for d in days]), master_url, COMPUTED_AT.isoformat()],
        capture_output=True, text=True, timeout=600, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    on_cluster = json.loads(proc.stdout[proc.stdout.index("RESULT") + len("RESULT") :])
    assert on_cluster == [r.model_dump(mode="json") for r in local]
    assert sum(r.events for r in local) > 0
    finished = state() or {}
    apps = finished.get("completedapps", []) + finished.get("activeapps", [])
    assert any(a.get("name") == "playcount-kpi-runner" for a in apps), "the job did not run on the cluster"
