"""A throw-away Playcount world: an emulator on a free port and randomly named resources.

Used by the test fixtures and the benchmarks, so neither depends on a stack started by hand.
"""

from __future__ import annotations

import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playcount.devstack import emulator
from playcount.devstack.settings import StackSettings
from playcount.ops.bootstrap import bootstrap


def sandbox_settings(endpoint: str, work_dir: Path, **overrides: Any) -> StackSettings:
    """Settings with unique bucket, queue and table names on `endpoint` (not yet bootstrapped)."""
    tag = uuid.uuid4().hex[:10]
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "S3_BUCKET": f"pc-{tag}",
        "DYNAMODB_TABLE_NAME": f"kpis-{tag}",
        "SQS_QUEUE_PREFIX": f"pc{tag}-",
        "SQS_WAIT_SECONDS": "1",
        "WORK_DIR": str(work_dir),
        "API_PORT": str(emulator.free_port()),
        "SPARK_MASTER": "local[2]",
        "RUNNER_BATCH_WINDOW_SECONDS": "0.2",
        "API_CACHE_SECONDS": "0.5",
        "API_STATUS_SECONDS": "0.5",
    }
    return StackSettings.load(env, **overrides)


@contextmanager
def sandbox(**overrides: Any) -> Iterator[StackSettings]:
    """Start an emulator, bootstrap fresh resources on it, yield their settings, stop it after."""
    import os

    os.environ.update(emulator.EMBEDDED_CREDENTIALS)
    os.environ.setdefault("AWS_REGION", "us-east-1")
    port = emulator.free_port()
    proc = emulator.start("127.0.0.1", port, log=subprocess.DEVNULL)
    try:
        with tempfile.TemporaryDirectory(prefix="playcount-") as work:
            settings = sandbox_settings(f"http://127.0.0.1:{port}", Path(work), **overrides)
            bootstrap(settings)
            yield settings
    finally:
        emulator.stop(proc)
