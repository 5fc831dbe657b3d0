"""A small TTL cache for read paths: repeated lookups within `ttl` seconds cost no DynamoDB call.

Contract: a value is never served more than `ttl` seconds after the read that produced it
started, so a new version of a date becomes visible within `ttl` seconds (API_CACHE_SECONDS,
default 2; 0 disables the cache). Absence (a 404) is cached the same way; errors are not.

Refresh ahead: once a value is past half its lifetime, the first request for it starts one
background refresh and is still answered from the cache; the refresh replaces the value before
it expires, so a key that is read steadily never makes a client wait for DynamoDB. A refresh
first asks `revalidate(value)` when given (see `versions`): a cheap check that returns when it
started if the value is still exact (the value is kept, restamped), or None (it is reloaded).
Concurrent misses on one key share one load (single flight), which runs as its own task: a
client that disconnects mid-load does not cancel it for the others.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

Loader = Callable[[], Awaitable[Any]]
# a value past this part of its lifetime is refreshed in the background on its next lookup
REFRESH_AT = 0.5
Revalidator = Callable[[Any], Awaitable[float | None]]


class TtlCache:
    def __init__(self, ttl: float, max_entries: int = 4096, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self.refreshes = 0
        self.revalidated = 0
        self.loads = 0
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()  # key -> (read started, value)
        self._inflight: dict[str, asyncio.Task[Any]] = {}

    async def get(self, key: str, load: Loader, revalidate: Revalidator | None = None) -> Any:
        if self.ttl <= 0:
            self.misses += 1
            return await load()
        hit = self._data.get(key)
        if hit is not None:
            age = self.clock() - hit[0]
            if age < self.ttl:
                self.hits += 1
                if age >= self.ttl * REFRESH_AT and key not in self._inflight:
                    self.refreshes += 1
                    self._start(key, load, revalidate, hit[1])
                return hit[1]
        self.misses += 1
        task = self._inflight.get(key)
        if task is None:
            task = self._start(key, load, revalidate, hit[1]) if hit else self._start(key, load)
        return await asyncio.shield(task)

    def _start(
        self, key: str, load: Loader, revalidate: Revalidator | None = None, old: Any = None
    ) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(self._refresh(key, load, revalidate, old))
        self._inflight[key] = task
        task.add_done_callback(lambda t: self._settled(key, t))
        return task

    def _settled(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled() and task.exception() is not None:
            # also retrieves it, for a refresh nobody awaited; the next miss tries again
            log.warning("cache load failed", key=key, error=str(task.exception()))

    async def _refresh(self, key: str, load: Loader, revalidate: Revalidator | None, old: Any) -> Any:
        if revalidate is not None:
            still_exact_at = await revalidate(old)
            if still_exact_at is not None:
                self.revalidated += 1
                current = self._data.get(key)
                self._store(key, max(still_exact_at, current[0] if current else 0.0), old)
                return old
        started = self.clock()  # the lifetime counts from before the read
        self.loads += 1
        value = await load()
        self._store(key, started, value)
        return value

    def _store(self, key: str, started: float, value: Any) -> None:
        self._data[key] = (started, value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()
