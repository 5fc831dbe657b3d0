"""`playcount up`: emulator + bootstrap + the four services in one foreground process tree."""

from __future__ import annotations

import os
import signal
import sys
import time
import urllib.error
from dataclasses import dataclass
from pathlib import Path

from playcount.core import http
from playcount.devstack import demo as run_demo
from playcount.devstack import emulator
from playcount.devstack.settings import StackSettings
from playcount.devstack.stack import Stack
from playcount.ops.bootstrap import bootstrap


def _wait_http(url: str, timeout: float, stack: Stack) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.supervise()
        try:
            with http.get(url, timeout=1):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def embedded_env(host: str, port: int) -> dict[str, str]:
    """The environment that points every process at the embedded emulator."""
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", **emulator.EMBEDDED_CREDENTIALS}
    env.setdefault("AWS_REGION", os.environ.get("AWS_REGION", "us-east-1"))
    env["AWS_DEFAULT_REGION"] = env["AWS_REGION"]
    return env


@dataclass(frozen=True)
class Demo:
    """What `--demo` uploads, and whether the stack stops after showing it."""

    seed: int = 7
    days: int = 3
    files_per_day: int = 3
    rows_per_file: int = 5000
    exit_after: bool = False


def up(
    host: str, port: int, *, external: str | None = None, demo: Demo | None = None, log_dir: Path | None = None
) -> int:
    """Run emulator (unless `external` names an endpoint), bootstrap and services until SIGTERM/SIGINT."""
    env = {} if external else embedded_env(host, port)
    os.environ.update(env)
    settings = StackSettings.load()
    stopping = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    moto = None if external else emulator.start(host, port)
    stack = Stack(env=env, log_dir=log_dir)
    code = 0
    try:
        print(f"[playcount] emulator on {settings.aws_endpoint_url}", file=sys.stderr, flush=True)
        bootstrap(settings)
        stack.start()
        api = f"http://{settings.api_host}:{settings.api_port}"
        _wait_http(f"{api}/health", 60, stack)
        print(f"[playcount] up: API on {api} (Ctrl-C stops everything)", file=sys.stderr, flush=True)
        if demo is not None:
            run_demo.run(settings, api, demo.seed, demo.days, demo.files_per_day, demo.rows_per_file)
            if demo.exit_after:
                stopping = True
        while not stopping:
            stack.supervise()
            time.sleep(0.5)
    except Exception as exc:
        print(f"[playcount] error: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        codes = stack.stop()
        if moto is not None:
            emulator.stop(moto)
        print(f"[playcount] stopped: {codes}", file=sys.stderr, flush=True)
    return code
