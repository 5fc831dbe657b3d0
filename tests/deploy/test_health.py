"""The container health check (`python -m playcount.core.health`), against a real worker and a real HTTP server."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from playcount.core.config import Settings
from playcount.core.health import heartbeat_problem, http_problem
from playcount.devstack.stack import Stack
from tests.support.helpers import wait_for


def _check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The exact command the images' HEALTHCHECK and the ECS task definitions run."""
    return subprocess.run(
        [sys.executable, "-m", "playcount.core.health", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_heartbeat_is_judged_by_its_age(tmp_path: Path) -> None:
    beat = tmp_path / "beat"
    assert "not set" in str(heartbeat_problem(None, 60))
    assert "no heartbeat" in str(heartbeat_problem(str(beat), 60))
    beat.write_text("x")
    now = beat.stat().st_mtime
    assert heartbeat_problem(str(beat), 60, now=now + 59) is None
    assert "61 s ago" in str(heartbeat_problem(str(beat), 60, now=now + 61))


@pytest.fixture
def http_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health" else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_url_check_needs_a_2xx(http_server: str) -> None:
    assert http_problem(f"{http_server}/health") is None
    assert "503" in str(http_problem(f"{http_server}/ready"))
    assert _check("--url", f"{http_server}/health").returncode == 0
    unhealthy = _check("--url", f"{http_server}/ready")
    assert unhealthy.returncode == 1 and "unhealthy" in unhealthy.stderr


def test_url_check_fails_when_nothing_listens() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert _check("--url", f"http://127.0.0.1:{port}/health").returncode == 1


def test_a_running_worker_is_healthy_and_a_stopped_one_goes_stale(
    settings: Settings, stack: Callable[..., Stack], tmp_path: Path
) -> None:
    """GIVEN dynamo-writer running with HEALTH_FILE set (as in its image) WHEN the check runs
    THEN it passes; once the worker is stopped, the heartbeat ages past the limit and it fails."""
    beat = tmp_path / "writer.health"
    s = stack(settings, services=("dynamo-writer",), HEALTH_FILE=str(beat))
    wait_for(beat.exists, timeout=60, what="the writer's first heartbeat")
    assert _check("--max-age", "30", env={"HEALTH_FILE": str(beat)}).returncode == 0
    s.stop()
    stopped_at = time.time()
    wait_for(lambda: time.time() - max(beat.stat().st_mtime, stopped_at) > 1.5, timeout=10, what="heartbeat to age")
    stale = _check("--max-age", "1", env={"HEALTH_FILE": str(beat)})
    assert stale.returncode == 1 and "last heartbeat" in stale.stderr
