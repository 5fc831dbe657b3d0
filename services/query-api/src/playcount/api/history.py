"""Pipeline history for the dashboard: an in-process sampler of the status, kept in a ring buffer.

Every `interval` seconds the sampler reads the pipeline status (counters, backlog, DLQ depth,
last freshness lag) and appends one sample; the buffer holds the last `capacity` samples
(defaults: every 5 s for one hour). The history belongs to this process: it starts empty when
the API starts, and each replica has its own. Counters themselves are durable (in DynamoDB),
so a restart loses the curve's past, never the totals.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from playcount.api.models import PipelineStatus, Sample

log = structlog.get_logger(__name__)


class History:
    def __init__(self, interval: float = 5.0, capacity: int = 720) -> None:
        self.interval = interval
        self.capacity = capacity
        self._samples: deque[Sample] = deque(maxlen=capacity)

    def add(self, status: PipelineStatus) -> None:
        fields = Sample.model_fields.keys() - {"at"}
        self._samples.append(Sample(at=status.checked_at, **status.model_dump(include=set(fields))))

    def samples(self) -> list[Sample]:
        return list(self._samples)

    async def run(self, read: Callable[[], Awaitable[PipelineStatus]]) -> None:
        """Sample until cancelled; an unreachable dependency skips a sample, it never stops the loop."""
        failing = False
        while True:
            try:
                self.add(await read())
                if failing:
                    log.info("history sampler recovered")
                failing = False
            except (BotoCoreError, ClientError, OSError) as exc:
                if not failing:  # log the outage once, not every interval
                    log.warning("history sampler cannot read the pipeline status", error=str(exc))
                failing = True
            await asyncio.sleep(self.interval)


@contextlib.asynccontextmanager
async def sampling(history: History, read: Callable[[], Awaitable[PipelineStatus]]) -> AsyncIterator[None]:
    task = asyncio.create_task(history.run(read), name="history-sampler")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
