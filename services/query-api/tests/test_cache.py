"""The read cache's contract, on plain coroutines and a hand-moved clock (no AWS, no timing):
lifetime, refresh ahead, revalidation, single flight, errors not cached."""

from __future__ import annotations

import asyncio

import pytest

from playcount.api.cache import TtlCache

pytestmark = pytest.mark.fast


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache_with_clock(ttl: float) -> tuple[TtlCache, Clock]:
    clock = Clock()
    return TtlCache(ttl=ttl, clock=clock), clock


class Source:
    """A loader that counts its calls and returns the current `value` after `delay` s."""

    def __init__(self, value: object = "v1", delay: float = 0.0) -> None:
        self.value = value
        self.delay = delay
        self.calls = 0
        self.fail = False
        self.started = asyncio.Event()  # set when a load starts
        self.task: asyncio.Task[object] | None = None  # the task of the last load: the cache's own

    async def load(self) -> object:
        self.calls += 1
        self.task = asyncio.current_task()
        self.started.set()
        await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("DynamoDB is down")
        return self.value

    async def settled(self, timeout: float = 5.0) -> None:
        """Until the last load's task is done: the cache has stored (or dropped) what it returned."""
        await asyncio.wait_for(self.started.wait(), timeout)
        assert self.task is not None
        await asyncio.wait_for(asyncio.shield(self.task), timeout)


async def test_a_value_is_served_from_the_cache_within_half_its_lifetime():
    cache, source = TtlCache(ttl=5.0), Source()
    assert [await cache.get("k", source.load) for _ in range(10)] == ["v1"] * 10
    assert source.calls == 1 and cache.hits == 9


async def test_past_half_its_lifetime_a_value_is_served_and_refreshed_in_the_background():
    (cache, clock), source = cache_with_clock(ttl=2.0), Source(delay=0.05)
    await cache.get("k", source.load)
    source.value = "v2"
    source.started.clear()
    clock.now += 1.2
    # the clients are answered at once from the cache, while one reload starts
    assert await cache.get("k", source.load) == "v1"
    assert await cache.get("k", source.load) == "v1"
    await source.settled()  # the background refresh has stored its value
    assert source.calls == 2 and cache.refreshes == 1
    assert await cache.get("k", source.load) == "v2"
    # and the new value's lifetime counts from when its read started
    clock.now += 0.99
    assert await cache.get("k", source.load) == "v2" and source.calls == 2


async def test_nothing_older_than_the_lifetime_is_ever_served():
    (cache, clock), source = cache_with_clock(ttl=2.0), Source(delay=0.05)
    await cache.get("k", source.load)
    source.value = "v2"
    clock.now += 2.0  # expired: the client waits for the (slow) reload rather than get the old value
    assert await cache.get("k", source.load) == "v2"


async def test_concurrent_misses_share_one_load():
    cache, source = TtlCache(ttl=5.0), Source(delay=0.1)
    values = await asyncio.gather(*(cache.get("k", source.load) for _ in range(50)))
    assert values == ["v1"] * 50 and source.calls == 1


async def test_a_client_going_away_does_not_cancel_the_load_for_the_others():
    cache, source = TtlCache(ttl=5.0), Source(delay=0.1)
    first = asyncio.ensure_future(cache.get("k", source.load))
    second = asyncio.ensure_future(cache.get("k", source.load))
    await asyncio.wait_for(source.started.wait(), 5)  # the shared load has started
    first.cancel()
    assert await second == "v1" and source.calls == 1


async def test_errors_are_not_cached():
    cache, source = TtlCache(ttl=5.0), Source()
    source.fail = True
    with pytest.raises(RuntimeError):
        await cache.get("k", source.load)
    source.fail = False
    assert await cache.get("k", source.load) == "v1" and source.calls == 2


async def test_revalidation_keeps_an_unchanged_value_and_reloads_a_changed_one():
    (cache, clock), source = cache_with_clock(ttl=2.0), Source()
    head = {"version": 1}
    checks = []

    async def revalidate(old: object) -> float | None:
        checks.append(old)
        return clock.now if head["version"] == 1 else None

    await cache.get("k", source.load, revalidate)
    source.value = "would be reloaded"
    clock.now += 2.5  # expired: the next client waits for the check, not for a reload
    assert await cache.get("k", source.load, revalidate) == "v1"
    assert source.calls == 1 and checks == ["v1"] and cache.revalidated == 1
    clock.now += 0.5  # restamped by the check: fresh again
    assert await cache.get("k", source.load, revalidate) == "v1" and checks == ["v1"]
    head["version"] = 2
    clock.now += 2.5
    assert await cache.get("k", source.load, revalidate) == "would be reloaded"
    assert source.calls == 2


async def test_a_zero_lifetime_disables_the_cache():
    cache, source = TtlCache(ttl=0), Source()
    for _ in range(3):
        await cache.get("k", source.load)
    assert source.calls == 3
