"""Reads of a date that never mix two versions, on the HEAD commit protocol (`playcount.core.head`).

A date's items read between two HEAD reads are one whole version when `head.is_whole` says so.
Otherwise the read is retried after a short pause, a few times; a date whose apply stays
unfinished (a writer cut short, until its redelivery repairs the date) answers 503 with
Retry-After rather than a mix (`DateBeingUpdated`). A cached body of the committed version stays
exact while an apply runs, and is served meanwhile.

Revalidating all of a date's cache entries (its genres, top genres and hours) costs one GetItem
of its HEAD, instead of one query per entry.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from playcount.api.telemetry import DYNAMODB, MIXED_READS
from playcount.core.head import APPLYING, VERSION, HeadState, head_key, is_whole

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

T = TypeVar("T")
# pauses between attempts at a whole version, seconds: short first (an apply about to commit),
# then every 0.25 s for about 3 s, so that one of them falls between two applies of a date that is
# recomputed back to back (each apply holds the date for its writes; a 16-genre apply takes well
# under a second), instead of a few late attempts that an apply can cover
RETRY_PAUSES = (0.02, 0.05, 0.1, 0.15, *(0.25,) * 11)


class DateBeingUpdated(Exception):
    """A date's items could not be read as one whole version: a writer is applying it."""

    def __init__(self, day: dt.date) -> None:
        super().__init__(f"{day.isoformat()} is being updated by the writer; retry shortly")
        self.day = day


@dataclass(frozen=True)
class Head(HeadState):
    started: float = 0.0  # when the read started (time.monotonic)


class DateVersions:
    def __init__(self, ddb: DynamoDBClient, table: str, reuse_seconds: float) -> None:
        self.ddb = ddb
        self.table = table
        self.reuse_seconds = reuse_seconds  # a HEAD read this recent serves every entry of its date
        self._last: dict[dt.date, Head] = {}
        self._inflight: dict[dt.date, asyncio.Task[Head]] = {}

    async def read(self, day: dt.date) -> Head:
        """The date's HEAD now, strongly consistent."""
        started = time.monotonic()
        with DYNAMODB.labels("get_item").time():
            raw = await self.ddb.get_item(
                TableName=self.table,
                Key=head_key(day),
                ProjectionExpression="#v, #a",
                ExpressionAttributeNames={"#v": VERSION, "#a": APPLYING},
                ConsistentRead=True,
            )
        state = HeadState.from_item(raw.get("Item"))
        head = Head(state.version, state.applying, started)
        self._last[day] = head
        return head

    async def recent(self, day: dt.date) -> Head:
        """A read started at most `reuse_seconds` ago, or a new one (one at a time per date)."""
        last = self._last.get(day)
        if last is not None and time.monotonic() - last.started <= self.reuse_seconds:
            return last
        task = self._inflight.get(day)
        if task is None:
            task = asyncio.ensure_future(self.read(day))
            self._inflight[day] = task
            task.add_done_callback(lambda t: self._inflight.pop(day, None))
        return await asyncio.shield(task)

    async def unchanged_since(self, day: dt.date, version: int) -> float | None:
        """When a HEAD read found `version` still committed (the entry's new start), else None.

        An apply under way does not matter here: the committed version's body stays exact
        until the commit moves HEAD.
        """
        head = await self.recent(day)
        return head.started if head.version == version else None

    async def whole(self, day: dt.date, read: Callable[[], Awaitable[tuple[T, set[int]]]]) -> tuple[T, int]:
        """`read()`'s value (with the versions of the items it saw) as one whole version of `day`.

        Returns the value and its version; raises `DateBeingUpdated` when every attempt
        overlapped an apply.
        """
        for attempt, pause in enumerate((0.0, *RETRY_PAUSES)):
            if pause:
                MIXED_READS.inc()
                await asyncio.sleep(pause)
            # the first attempt may share a recent HEAD read: any read started before the items will do
            before = await (self.recent(day) if attempt == 0 else self.read(day))
            if not before.settled:
                continue
            value, seen = await read()
            if not seen <= {before.version}:
                continue
            if is_whole(before, seen, await self.read(day)):
                return value, before.version
        raise DateBeingUpdated(day)
