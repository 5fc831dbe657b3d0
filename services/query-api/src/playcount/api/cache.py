"""A small TTL cache for read paths: repeated lookups within `ttl` seconds cost no DynamoDB call.

Contract: a value is served for at most `ttl` seconds after it was loaded, so a new version of
a date becomes visible within `ttl` seconds (API_CACHE_SECONDS, default 2; 0 disables the
cache). Absence (a 404) is cached the same way. Concurrent misses on one key share one load
(single flight), and that load runs as its own task: a client that disconnects mid-load does
not cancel it for the others. Errors are not cached.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any


class TtlCache:
    def __init__(self, ttl: float, max_entries: int = 4096) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._inflight: dict[str, asyncio.Task[Any]] = {}

    async def get(self, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        if self.ttl <= 0:
            self.misses += 1
            return await load()
        hit = self._data.get(key)
        if hit is not None and hit[0] > time.monotonic():
            self.hits += 1
            return hit[1]
        self.misses += 1
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._load(key, load))
            self._inflight[key] = task
            task.add_done_callback(lambda t: self._settled(key, t))
        return await asyncio.shield(task)

    def _settled(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every waiter went away

    async def _load(self, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        # the lifetime counts from before the read, so nothing older than `ttl` is ever served
        expires = time.monotonic() + self.ttl
        value = await load()
        self._data[key] = (expires, value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        self._data.clear()
