"""`playcount up`: emulator + bootstrap + the four services in one foreground process tree."""

from __future__ import annotations

import os
import signal
import sys
import time
import urllib.error
from pathlib import Path
from typing import Any

from playcount.cli import demo, emulator
from playcount.cli.stack import Stack
from playcount.core import http
from playcount.core.bootstrap import bootstrap
from playcount.core.config import load_settings


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


def up(args: Any) -> int:
    host: str = getattr(args, "host", "127.0.0.1")
    port: int = getattr(args, "port", int(os.environ.get("EMULATOR_PORT", "4566")))
    external = os.environ.get("AWS_ENDPOINT_URL") if getattr(args, "no_emulator", False) else None
    env = {} if external else embedded_env(host, port)
    os.environ.update(env)
    settings = load_settings()
    stopping = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    moto = None if external else emulator.start(host, port)
    stack = Stack(env=env, log_dir=Path(args.log_dir) if getattr(args, "log_dir", None) else None)
    code = 0
    try:
        print(f"[playcount] emulator on {settings.aws_endpoint_url}", file=sys.stderr, flush=True)
        bootstrap(settings)
        stack.start()
        api = f"http://{settings.api_host}:{settings.api_port}"
        _wait_http(f"{api}/health", 60, stack)
        print(f"[playcount] up: API on {api} (Ctrl-C stops everything)", file=sys.stderr, flush=True)
        if getattr(args, "demo", False):
            demo.run(
                settings,
                api,
                seed=getattr(args, "seed", 7),
                days=getattr(args, "demo_days", 3),
                files_per_day=getattr(args, "demo_files_per_day", 3),
                rows_per_file=getattr(args, "demo_rows", 5000),
            )
            if getattr(args, "exit_after_demo", False):
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
