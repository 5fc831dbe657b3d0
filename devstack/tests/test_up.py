"""`playcount up`: the embedded stack comes up, the demo ends with served KPIs, SIGTERM stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from playcount.devstack.emulator import free_port
from tests.support.helpers import get_json, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.spark]


def _env(api_port: int, tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"API_PORT": str(api_port), "WORK_DIR": str(tmp_path / "work"), "SPARK_MASTER": "local[2]",
                "SQS_WAIT_SECONDS": "1"})  # fmt: skip
    return env


def test_up_demo_serves_kpis_and_exits_cleanly(tmp_path):
    api_port, moto_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "playcount.cli.main", "up", "--demo", "--exit-after-demo", "--port", str(moto_port)]
    cmd += ["--demo-days", "2", "--demo-files-per-day", "1", "--demo-rows", "500", "--log-dir", str(tmp_path / "logs")]
    proc = subprocess.run(cmd, env=_env(api_port, tmp_path), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Top genres per day" in proc.stdout
    assert f"http://127.0.0.1:{api_port}/genres/" in proc.stdout
    assert "'ingest-validator': 0" in proc.stderr and "'query-api': 0" in proc.stderr


def test_sigterm_stops_the_whole_tree(tmp_path):
    api_port, moto_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "playcount.cli.main", "up", "--port", str(moto_port), "--log-dir", str(tmp_path / "l")]
    proc = subprocess.Popen(cmd, env=_env(api_port, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: get_json(f"http://127.0.0.1:{api_port}/health")[0] == 200, timeout=120, what="API up")
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 5  # emulator + four services (Spark's JVM below the runner)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(c.is_running() and c.status() != "zombie" for c in children):
            time.sleep(0.1)
        left = [c.pid for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        assert not left, f"processes left behind: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
