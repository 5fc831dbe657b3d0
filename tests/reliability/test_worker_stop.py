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
from tests.support.helpers import wait_for
from tests.support.world import log_events

ROOT = Path(__file__).resolve().parents[2]


def _events(log_dir: Path, *fields: str) -> list[dict[str, object]]:
    """The worker's logged events, each cut down to `fields`."""
    return [{f: e.get(f) for f in fields} for e in log_events(log_dir, "worker")]


def test_sigterm_with_a_hung_handler_exits_0_quickly_and_returns_the_message(settings, tmp_path):
    sqs = aws.client(settings, "sqs")
    url = aws.queue_url(sqs, resources(settings).queue(VALIDATED).name)
    sqs.send_message(QueueUrl=url, MessageBody="hang-on-this")
    out = tmp_path / "worker.log"  # the JSON lines `log_events(tmp_path, "worker")` reads
    env = {**os.environ, **settings.to_env(), **emu.EMBEDDED_CREDENTIALS, "LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"}
    with open(out, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.stuck_worker"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    try:
        # GIVEN the worker holding the message in a thread that will never return
        wait_for(
            lambda: {"event": "stuck_worker.holding", "body": "hang-on-this"} in _events(tmp_path, "event", "body"),
            timeout=60,
            what="the worker holding it",
        )

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
    assert code == 0, out.read_text()[-2000:]
    assert took < 10, f"took {took:.1f} s"
    # (the batch in hand released, and the exit said it left the hung thread behind)
    assert {"event": "consumer.released", "messages": 1} in _events(tmp_path, "event", "messages")
    assert {"event": "worker.exit", "abandoned": True} in _events(tmp_path, "event", "abandoned")
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", [])
    assert [m["Body"] for m in got] == ["hang-on-this"]
