"""The one retry policy: its waits, its bounds, its log lines, and its async form (no AWS here)."""

from __future__ import annotations

import asyncio
import random

import pytest
from structlog.testing import capture_logs

from playcount.core import retrying

pytestmark = pytest.mark.fast  # pure: no emulator, no Spark (make check)


class Busy(Exception):
    pass


def _failing(times: int, exc: Exception | None = None):
    calls = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise exc or Busy(f"busy {len(calls)}")
        return "done"

    return call, calls


def test_waits_grow_exponentially_under_a_cap_with_full_or_half_jitter():
    full = retrying.Jitter(0.05, 2.0, rng=random.Random(1))
    assert [full.ceiling(n) for n in range(8)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    assert full.ceiling(10_000) == 2.0
    delays = [full.delay(3) for _ in range(400)]
    assert min(delays) < 0.1 * 0.4 and max(delays) > 0.9 * 0.4 and all(0 <= d <= 0.4 for d in delays)
    half = retrying.Jitter(0.5, 10.0, floor=0.5, rng=random.Random(2))
    assert all(1.0 <= half.delay(2) <= 2.0 for _ in range(400))  # ceiling 0.5 * 2**2
    with pytest.raises(ValueError):
        retrying.Jitter(1, 2, floor=1.5)


def test_retries_what_it_is_told_to_and_logs_each_retry():
    call, calls = _failing(2)
    sleeps: list[float] = []
    with capture_logs() as logs:
        for attempt in retrying.retrying(
            event="thing.retry",
            retry_on=lambda exc: isinstance(exc, Busy),
            attempts=5,
            base=0.1,
            cap=1.0,
            sleep=sleeps.append,
            rng=random.Random(3),
            thing="x",
        ):
            with attempt:
                result = call()
    assert result == "done" and len(calls) == 3
    assert [e["failures"] for e in logs] == [1, 2]
    assert all(e["event"] == "thing.retry" and e["thing"] == "x" and e["log_level"] == "info" for e in logs)
    assert logs[0]["error"] == "Busy('busy 1')"
    assert [e["retry_in_s"] for e in logs] == [round(s, 3) for s in sleeps]
    assert 0 <= sleeps[0] <= 0.1 and 0 <= sleeps[1] <= 0.2


def test_the_last_error_is_raised_as_it_was_when_the_attempts_are_used_up():
    call, calls = _failing(10)
    with pytest.raises(Busy, match="busy 4"):
        for attempt in retrying.retrying(
            event="e", retry_on=lambda exc: isinstance(exc, Busy), attempts=4, base=0.01, cap=0.01, sleep=lambda s: None
        ):
            with attempt:
                call()
    assert len(calls) == 4


def test_an_error_it_was_not_told_to_retry_is_raised_at_once():
    call, calls = _failing(10, ValueError("bad"))
    with capture_logs() as logs, pytest.raises(ValueError):
        for attempt in retrying.retrying(
            event="e", retry_on=lambda exc: isinstance(exc, Busy), attempts=4, base=0.01, cap=0.01, sleep=lambda s: None
        ):
            with attempt:
                call()
    assert len(calls) == 1 and logs == []


def test_a_deadline_bounds_the_retries_in_seconds():
    call, calls = _failing(1000)
    with pytest.raises(Busy):
        for attempt in retrying.retrying(
            event="e", retry_on=lambda exc: isinstance(exc, Busy), deadline=0.2, base=0.01, cap=0.02
        ):
            with attempt:
                call()
    assert 3 < len(calls) < 100


async def test_async_retries_until_stop_and_stop_cuts_a_wait_short():
    stop = asyncio.Event()
    tries = 0

    async def poll() -> None:
        nonlocal tries
        tries += 1
        if tries == 1:  # the wait after this failure (2.5 s at least) is cut short by a stop
            asyncio.get_running_loop().call_later(0.05, stop.set)
        raise ConnectionError("down")

    started = asyncio.get_running_loop().time()
    with capture_logs() as logs:
        async for attempt in retrying.async_retrying(
            event="loop.unreachable",
            retry_on=retrying.is_error,
            base=5.0,
            cap=5.0,
            floor=0.5,
            sleep=retrying.sleep_until(stop),
            level=30,
        ):
            if stop.is_set():
                break
            with attempt:
                await poll()
    assert tries == 1 and asyncio.get_running_loop().time() - started < 1
    assert [(e["event"], e["log_level"]) for e in logs] == [("loop.unreachable", "warning")]
    assert 2.5 <= logs[0]["retry_in_s"] <= 5.0
