"""A genre's trend over a range of days, each day one whole, fully written version.

A trend costs two queries, whatever the range: the genre's trend items (`TREND#{genre}`, one
per date, written by the writer with the rest of the date) and the days catalogue over the same
range. The writer puts a date's catalogue entry only after every item of its version is
written, so a trend item is served when the catalogue holds its version, and a day is complete
when every catalogue entry that names the genre has its trend item:

- an item newer than its catalogue entry belongs to an apply under way (it may be cut short);
- an entry that names the genre without an item means an apply under way removed it;

either way the read is retried after a short pause, and answers 503 with Retry-After when the
apply stays unfinished (`consistent.DateBeingUpdated`), as a date's own lookups do. A date whose
entry was written before trend items existed (no `trend_items` flag) has no items: it is absent
from trends until it is recomputed, and an item that appears for it is an apply under way.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from playcount.api.consistent import RETRY_PAUSES, DateBeingUpdated
from playcount.api.store import KpiStore
from playcount.api.telemetry import MIXED_READS
from playcount.core.kpis import TrendDay


def unsettled(genre: str, days: Sequence[TrendDay], entries: Sequence[Mapping[str, Any]]) -> dt.date | None:
    """The first date whose trend item and catalogue entry disagree, or None when all agree."""
    committed = {
        dt.date.fromisoformat(str(e["date"])): int(e["version"])
        for e in entries
        if e.get("trend_items") and genre in e.get("genres", ())
    }
    legacy = {dt.date.fromisoformat(str(e["date"])) for e in entries if not e.get("trend_items")}
    seen = {d.date: d.version for d in days}
    for day in sorted(set(committed) | set(seen)):
        if (day in seen) if day in legacy else committed.get(day) != seen.get(day):
            return day
    return None


async def whole_trend(store: KpiStore, genre: str, first: dt.date, last: dt.date) -> list[TrendDay]:
    """The genre's days from `first` to `last` (oldest first); raises DateBeingUpdated."""
    day = first
    for pause in (0.0, *RETRY_PAUSES):
        if pause:
            MIXED_READS.inc()
            await asyncio.sleep(pause)
        days = await store.trend(genre, first, last)
        mismatch = unsettled(genre, days, await store.days(first, last))
        if mismatch is None:
            return days
        day = mismatch
    raise DateBeingUpdated(day)
