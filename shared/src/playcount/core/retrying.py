"""The one retry policy of every loop that tries again: tenacity, configured once.

Retry `n` (0 for the first) waits a random time in `[floor * c, c]`, where
`c = min(cap, base * 2**n)`: exponential backoff with full jitter (`floor=0`, for contention:
writers racing for an item, a lease, a manifest), or with the lower half cut off (`floor=0.5`,
for an unreachable endpoint, so a worker does not poll a dead one again at once). Each loop
chooses what is retryable (`retry_on`), its bound (`attempts`, `deadline` seconds since the
first try, or neither: until the caller stops iterating) and its figures. Each retry is logged
as `event` with `failures` (failed tries so far), `retry_in_s` and the error; when the bound is
reached, the last exception is raised as it was (never tenacity's `RetryError`), so callers
translate it exactly as they did the first.

Tests inject `sleep` (and `rng`) to run fast and deterministically.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    stop_never,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

log = structlog.get_logger(__name__)


class Jitter(wait_base):
    """Exponential backoff with jitter: retry n waits uniform(floor * c, c), c = min(cap, base * 2**n)."""

    def __init__(self, base: float, cap: float, *, floor: float = 0.0, rng: random.Random | None = None) -> None:
        if not 0 <= floor <= 1:
            raise ValueError(f"floor is a fraction of the ceiling, not {floor}")
        self.base, self.cap, self.floor = base, cap, floor
        self._uniform = rng.uniform if rng is not None else random.uniform

    def ceiling(self, n: int) -> float:
        """The longest wait before retry `n` (0 for the first)."""
        return min(self.cap, self.base * 2 ** min(n, 60))

    def delay(self, n: int) -> float:
        """A wait before retry `n`, drawn anew on each call."""
        ceiling = self.ceiling(n)
        return self._uniform(self.floor * ceiling, ceiling)

    def __call__(self, retry_state: RetryCallState) -> float:
        return self.delay(retry_state.attempt_number - 1)


def _settings(
    event: str,
    retry_on: Callable[[BaseException], bool],
    wait: Jitter,
    attempts: int | None,
    deadline: float | None,
    level: int,
    describe: Callable[[BaseException], dict[str, Any]] | None,
    context: dict[str, Any],
) -> dict[str, Any]:
    stops: list[stop_base] = []
    if attempts is not None:
        stops.append(stop_after_attempt(attempts))
    if deadline is not None:
        stops.append(stop_after_delay(deadline))

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        fields = describe(exc) if describe is not None and exc is not None else {"error": repr(exc)}
        log.log(
            level,
            event,
            **context,
            **fields,
            failures=state.attempt_number,
            retry_in_s=round(state.upcoming_sleep, 3),
        )

    return {
        "wait": wait,
        "stop": stop_any(*stops) if stops else stop_never,
        "retry": retry_if_exception(retry_on),
        "before_sleep": before_sleep,
        "reraise": True,
    }


def retrying(
    *,
    event: str,
    retry_on: Callable[[BaseException], bool],
    base: float,
    cap: float,
    floor: float = 0.0,
    attempts: int | None = None,
    deadline: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    level: int = logging.INFO,
    describe: Callable[[BaseException], dict[str, Any]] | None = None,
    **context: Any,
) -> Retrying:
    """The policy for a blocking loop: `for attempt in retrying(...): with attempt: ...`.

    `attempts` counts every try (the first included); `deadline` is in seconds since the first
    try began (a failure after it ends the loop); `describe` gives the log fields of an error
    (default: its repr); `context` goes into every log line.
    """
    return Retrying(
        sleep=sleep,
        **_settings(
            event, retry_on, Jitter(base, cap, floor=floor, rng=rng), attempts, deadline, level, describe, context
        ),
    )


def async_retrying(
    *,
    event: str,
    retry_on: Callable[[BaseException], bool],
    base: float,
    cap: float,
    floor: float = 0.0,
    attempts: int | None = None,
    deadline: float | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
    level: int = logging.INFO,
    describe: Callable[[BaseException], dict[str, Any]] | None = None,
    **context: Any,
) -> AsyncRetrying:
    """`retrying` for a coroutine: `async for attempt in async_retrying(...): with attempt: ...`."""
    return AsyncRetrying(
        sleep=sleep,
        **_settings(
            event, retry_on, Jitter(base, cap, floor=floor, rng=rng), attempts, deadline, level, describe, context
        ),
    )


def sleep_until(event: asyncio.Event) -> Callable[[float], Awaitable[None]]:
    """An async sleep that ends early once `event` is set (a stop request cuts a backoff short)."""

    async def sleep(seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    return sleep


def is_error(exc: BaseException) -> bool:
    """Any `Exception`: never a cancellation, KeyboardInterrupt or SystemExit."""
    return isinstance(exc, Exception)
