"""A worker process stops within a bounded time on SIGTERM even when its handler hangs for ever.

The batch in hand is released (visible again at once) and the process exits 0 instead of
waiting for the hung thread (which `asyncio.run` would do without bound).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from playcount.core import aws
from playcount.core.resources import VALIDATED, resources
from playcount.devstack import emulator as emu
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_with_a_hung_handler_exits_0_quickly_and_returns_the_message(settings, tmp_path):
    sqs = aws.client(settings, "sqs")
    url = aws.queue_url(sqs, resources(settings).queue(VALIDATED).name)
    sqs.send_message(QueueUrl=url, MessageBody="hang-on-this")
    out = tmp_path / "worker.log"
    env = {**os.environ, **settings.to_env(), **emu.EMBEDDED_CREDENTIALS, "LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"}
    with open(out, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.stuck_worker"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    try:
        # GIVEN the worker holding the message in a thread that will never return
        wait_for(lambda: b"stuck_worker.holding" in out.read_bytes(), timeout=60, what="the worker holding it")

        # WHEN it gets SIGTERM
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # THEN it exits 0 within its 1 s shutdown timeout plus a little, and the message is back at once
    log_text = out.read_text()
    assert code == 0, log_text[-2000:]
    assert took < 10, f"took {took:.1f} s"
    assert "consumer.released" in log_text and '"abandoned": true' in log_text
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", [])
    assert [m["Body"] for m in got] == ["hang-on-this"]
