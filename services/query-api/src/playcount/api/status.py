"""The pipeline's state as the API reports it: counters, queue and DLQ depths, idle, freshness.

One read costs one DynamoDB query and two SQS calls per queue; `/pipeline/status`, `/metrics`
and the history sampler share it through its own cache, so it is read at most once per
API_STATUS_SECONDS (2 s) however many clients poll, whatever API_CACHE_SECONDS the KPIs use.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from playcount.api.cache import TtlCache
from playcount.api.models import PipelineStatus
from playcount.api.store import KpiStore
from playcount.core.config import Settings
from playcount.ops import pipeline

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient


class StatusProbe:
    def __init__(self, settings: Settings, store: KpiStore, sqs: SQSClient, cache: TtlCache) -> None:
        self.settings = settings
        self.store = store
        self.sqs = sqs  # a synchronous boto3 client: `pipeline.queue_depths` is shared with the CLI
        self.cache = cache

    async def read(self) -> PipelineStatus:
        """The current state; raises botocore errors when AWS cannot be reached."""
        return await self.cache.get("pipeline-status", self._read)

    async def _read(self) -> PipelineStatus:
        depths, (counters, freshness) = await asyncio.gather(
            asyncio.to_thread(pipeline.queue_depths, self.settings, self.sqs),
            self.store.counters_and_freshness(),
        )
        return PipelineStatus(
            idle=all(q.empty for q in depths),
            queues=depths,
            backlog=sum(q.visible + q.in_flight + q.delayed for q in depths),
            dlq_total=sum(q.dlq_depth for q in depths),
            freshness_lag_seconds=float(freshness["lag_seconds"]) if freshness else None,
            freshness_measured_at=str(freshness["at"]) if freshness else None,
            checked_at=time.time(),
            **counters,
        )
