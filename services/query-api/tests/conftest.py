"""Fixtures for the API tests: KPIs written by the real writer, and the API served over real HTTP.

- `written`: two days of KPIs computed by the independent oracle from generated listens, and
  applied to the test's table by the dynamo-writer's own `apply` (what the writer process does);
- `serve`: a factory running `create_app(settings)` under uvicorn on a free loopback port, in a
  thread of the test process (so a test can pick the history interval), stopped after the test;
- `browser`: headless Chromium under ChromeDriver, for the pages' tests (dashboard, explorer).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvicorn

from playcount.api.app import create_app
from playcount.api.history import History
from playcount.core import aws
from playcount.core.config import Settings
from playcount.core.kpis import DayKpis, GenreDay, GenreRank, HourStats
from playcount.devstack import generate
from playcount.devstack.emulator import free_port
from playcount.devstack.sandbox import sandbox_settings
from playcount.ops.bootstrap import bootstrap
from playcount.writer.apply import apply
from tests.support import oracle
from tests.support.helpers import wait_for
from tests.support.sandbox import teardown

DAYS = (dt.date(2025, 6, 24), dt.date(2025, 6, 25))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def day_kpis(day: dt.date, expected: dict[str, Any], version: int) -> DayKpis:
    """The writer's input for one day, built from the oracle's figures."""
    return DayKpis(
        date=day,
        version=version,
        computed_at=dt.datetime.now(dt.UTC),
        events=expected["listens"],
        unique_listeners=expected["unique_listeners"],
        genres=[GenreDay(genre=g, **v) for g, v in sorted(expected["genres"].items())],
        top_genres=[GenreRank(**r) for r in expected["top_genres"]],
        hours=[HourStats(**h) for _, h in sorted(expected["hours"].items())],
    )


def write(settings: Settings, kpis: DayKpis) -> None:
    apply(aws.client(settings, "dynamodb"), settings.dynamodb_table_name, kpis, lease_seconds=30, wait_seconds=10)


@dataclass
class Written:
    settings: Settings
    expected: dict[str, dict[str, Any]]  # the oracle's figures per ISO date
    kpis: dict[str, DayKpis]  # what was applied, per ISO date

    @property
    def days(self) -> list[str]:
        return sorted(self.expected)

    def apply(self, kpis: DayKpis) -> None:
        write(self.settings, kpis)

    def bumped(self, day: str) -> tuple[str, DayKpis]:
        """The day at the next version, with one more listen on its top genre (which is returned)."""
        expected = self.expected[day]
        top = expected["top_genres"][0]["genre"]
        genres = {**expected["genres"], top: {**expected["genres"][top]}}
        genres[top]["listen_count"] += 1
        version = self.kpis[day].version + 1
        return top, day_kpis(dt.date.fromisoformat(day), {**expected, "genres": genres}, version=version)


def write_oracle_days(settings: Settings) -> Written:
    songs, users, cat = generate.dataset(seed=7, n_tracks=240, n_users=90)
    table = generate.streams_table(np.random.default_rng(5), cat, 2500, list(DAYS))
    expected = oracle.kpis(
        zip(table["user_id"].to_pylist(), table["track_id"].to_pylist(), table["listen_time"].to_pylist(), strict=True),
        oracle.metadata_from_csv(songs.to_pylist(), "track_id"),
        oracle.metadata_from_csv(users.to_pylist(), "user_id"),
    )
    applied = {}
    for day, figures in expected.items():
        applied[day] = day_kpis(dt.date.fromisoformat(day), figures, version=1)
        write(settings, applied[day])
    return Written(settings, expected, applied)


@pytest.fixture
def fresh_written(settings: Settings) -> Written:
    """Two days written into this test's own table (for tests that change them)."""
    return write_oracle_days(settings)


@pytest.fixture(scope="session")
def shared_written(emulator: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Written]:
    """Two days written once for the session, for tests that only read them (do not write here)."""
    settings = sandbox_settings(emulator, tmp_path_factory.mktemp("work"))
    bootstrap(settings)
    yield write_oracle_days(settings)
    teardown(settings)


@pytest.fixture(scope="session")
def shared_api(shared_written: Written) -> Iterator[str]:
    """The API over `shared_written`, for the session."""
    with served(shared_written.settings) as server:
        yield server.url


@dataclass
class Served:
    url: str
    app: Any


@contextlib.contextmanager
def served(settings: Settings, history: History | None = None) -> Iterator[Served]:
    app = create_app(settings, history=history or History(interval=60))
    port = free_port()
    # loop="asyncio": uvloop's policy would be installed process-wide, under pytest-asyncio too
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", loop="asyncio", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), timeout=60, what="uvicorn to start")
        assert server.started, "uvicorn did not start (see the log above)"
        yield Served(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """A factory: `serve(settings, history=None)` starts an API, stopped after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda settings, history=None: stack.enter_context(served(settings, history))


@pytest.fixture(scope="session")
def serve_for_session() -> Iterator[Callable[..., Served]]:
    """Like `serve`, for module- or session-scoped fixtures: stopped at the end of the session."""
    with contextlib.ExitStack() as stack:
        yield lambda settings, history=None: stack.enter_context(served(settings, history))


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium under ChromeDriver (its console kept for `get_log("browser")`), quit after the test."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("Chromium and ChromeDriver are not installed (scripts/setup.sh test installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--window-size=1440,1480",
        "--force-device-scale-factor=1",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page_done(tmp_path: Path) -> Callable[[Any, str, str], None]:
    """`done(browser, name, keep_variable)`: the page logged no error (a script or style the
    Content-Security-Policy refused would show there), then a whole-page screenshot, copied to the
    path in the environment variable `keep_variable` when it is set (how docs/*.png are made)."""

    def done(browser: Any, name: str, keep_variable: str) -> None:
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, json.dumps(errors, indent=1)
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1440, height + 140)
        shot = tmp_path / f"{name}.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        keep = os.environ.get(keep_variable)
        if keep:
            shutil.copyfile(shot, keep)

    return done
