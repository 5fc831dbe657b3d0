"""The four services as supervised child processes (the embedded stack and the tests use this).

A service that dies unexpectedly is restarted after a short backoff, as an orchestrator
would. `stop()` sends SIGTERM to every service, waits, then SIGKILLs what is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from playcount.devstack.emulator import die_with_parent

SERVICES: dict[str, str] = {
    "ingest-validator": "playcount.validator.main",
    "kpi-spark-runner": "playcount.runner.main",
    "dynamo-writer": "playcount.writer.main",
    "query-api": "playcount.api.main",
}


@dataclass
class Stack:
    env: Mapping[str, str]
    services: Iterable[str] = tuple(SERVICES)
    log_dir: Path | None = None
    restart: bool = True
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    _logs: dict[str, IO[bytes]] = field(default_factory=dict)
    _stopping: bool = False

    def start(self) -> None:
        for name in self.services:
            self.start_service(name)

    def start_service(self, name: str) -> subprocess.Popen[bytes]:
        out: IO[bytes] | None = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = self._logs.get(name) or open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115
            self._logs[name] = out
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", SERVICES[name]], env=env, stdout=out, stderr=out, preexec_fn=die_with_parent
        )
        self.procs[name] = proc
        return proc

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(sig)
            proc.wait(timeout=60)

    def supervise(self) -> list[str]:
        """Restart services that exited on their own; returns the names restarted."""
        restarted = []
        for name, proc in list(self.procs.items()):
            if proc.poll() is not None and not self._stopping and self.restart:
                self.restarts[name] = self.restarts.get(name, 0) + 1
                print(f"[playcount] {name} exited with {proc.returncode}; restarting", file=sys.stderr)
                time.sleep(min(5.0, 0.5 * self.restarts[name]))
                self.start_service(name)
                restarted.append(name)
        return restarted

    def stop(self, timeout: float = 30.0) -> dict[str, int | None]:
        self._stopping = True
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: dict[str, int | None] = {}
        for name, proc in self.procs.items():
            try:
                codes[name] = proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                codes[name] = None
        for f in self._logs.values():
            f.close()
        return codes
