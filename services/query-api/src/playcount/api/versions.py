"""Which version of a date is committed: one read of the date's HEAD revalidates all its cache entries.

The writer moves a date's HEAD to the new version only after every item of that version is
written (`playcount.writer.head.commit`). So a cached lookup tagged with the HEAD version
read *before* its items is still exact while HEAD keeps that version, and must be reloaded
once HEAD moves. Revalidating all of a date's entries (its genres, top genres and hours)
costs one GetItem of its HEAD, instead of one query per entry: a date with 100 genres read
steadily costs 1 read per refresh period instead of 100.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

from playcount.api.telemetry import DYNAMODB
from playcount.core import keys


class DateVersions:
    def __init__(self, ddb: Any, table: str, reuse_seconds: float) -> None:
        self.ddb = ddb
        self.table = table
        self.reuse_seconds = reuse_seconds  # a HEAD read this recent serves every entry of its date
        self._last: dict[dt.date, tuple[float, int]] = {}
        self._inflight: dict[dt.date, asyncio.Task[tuple[float, int]]] = {}

    async def read(self, day: dt.date) -> tuple[float, int]:
        """(when the read started, the committed version; 0 without HEAD), strongly consistent."""
        started = time.monotonic()
        with DYNAMODB.labels("get_item").time():
            raw = await self.ddb.get_item(
                TableName=self.table,
                Key={"pk": {"S": keys.day_pk(day)}, "sk": {"S": keys.HEAD_SK}},
                ProjectionExpression="#v",
                ExpressionAttributeNames={"#v": "version"},
                ConsistentRead=True,
            )
        version = int(raw.get("Item", {}).get("version", {}).get("N", 0))
        self._last[day] = (started, version)
        return started, version

    async def recent(self, day: dt.date) -> tuple[float, int]:
        """A read started at most `reuse_seconds` ago, or a new one (one at a time per date)."""
        last = self._last.get(day)
        if last is not None and time.monotonic() - last[0] <= self.reuse_seconds:
            return last
        task = self._inflight.get(day)
        if task is None:
            task = asyncio.ensure_future(self.read(day))
            self._inflight[day] = task
            task.add_done_callback(lambda t: self._inflight.pop(day, None))
        return await asyncio.shield(task)

    async def unchanged_since(self, day: dt.date, version: int) -> float | None:
        """When a HEAD read found `version` still committed (the entry's new start), else None."""
        started, current = await self.recent(day)
        return started if current == version else None
