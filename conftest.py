"""Fixtures shared by every test: each test session owns its emulator, each test its resources.

- `emulator`: moto in server mode on a free loopback port, for the whole session;
- `settings`: randomly named bucket, queues and table on it, bootstrapped, for one test, and
  deleted after it (`tests.support.sandbox.teardown`); `sandbox(**overrides)` for other settings;
- `stack`: a factory that starts services as real child processes and stops them after;
- `spark`: one warm local Spark session for the tests that need it.
AWS_* variables from the developer's environment are stripped, so nothing leaks in.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from playcount.core.config import Settings
from playcount.devstack import emulator as emu
from playcount.devstack.sandbox import sandbox_settings
from playcount.devstack.stack import Stack
from playcount.ops.bootstrap import bootstrap
from tests.support.sandbox import teardown


@pytest.fixture(scope="session", autouse=True)
def _isolated_aws_env() -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    for k in saved:
        del os.environ[k]
    os.environ.update({**emu.EMBEDDED_CREDENTIALS, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"})
    yield
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[k]
    os.environ.update(saved)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = emu.free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")  # noqa: SIM115
    proc = emu.start("127.0.0.1", port, log=log.fileno())
    yield f"http://127.0.0.1:{port}"
    emu.stop(proc)
    log.close()


@pytest.fixture
def settings(emulator: str, tmp_path: Path) -> Iterator[Settings]:
    s = sandbox_settings(emulator, tmp_path / "work")
    bootstrap(s)
    yield s
    teardown(s)


@pytest.fixture
def sandbox(emulator: str, tmp_path: Path) -> Iterator[Callable[..., Settings]]:
    """A factory for a test that needs other settings: `sandbox(**overrides)` bootstraps fresh
    resources with them; they are deleted after the test."""
    made: list[Settings] = []

    def make(**overrides: Any) -> Settings:
        s = sandbox_settings(emulator, tmp_path / f"sandbox-{len(made)}", **overrides)
        made.append(s)
        bootstrap(s)
        return s

    yield make
    for s in made:
        teardown(s)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    started: list[Stack] = []

    def start(settings: Settings, services: tuple[str, ...] | None = None, **env: str) -> Stack:
        from playcount.devstack.stack import SERVICES

        s = Stack(
            env={**settings.to_env(), **emu.EMBEDDED_CREDENTIALS, "LOG_FORMAT": "json", **env},
            services=services or tuple(SERVICES),
            log_dir=tmp_path / "logs",
        )
        s.start()
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from playcount.runner.config import RunnerSettings
    from playcount.runner.session import spark_session

    session = spark_session(RunnerSettings.load({"SPARK_MASTER": "local[2]"}))
    yield session
    session.stop()
