"""Prometheus metrics of the API: per-route requests and latencies, and the pipeline's gauges.

Requests are labelled by route template (`/genres/{genre}/days/{date}`), never the raw path,
so label cardinality stays bounded whatever clients send; paths that match no route share the
label `unmatched`. The middleware is plain ASGI (no BaseHTTPMiddleware) to stay off the hot path.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import Message, Receive, Scope, Send

from playcount.api.asgi import HttpMiddleware
from playcount.api.cache import TtlCache
from playcount.api.models import PipelineStatus
from playcount.core.ledger import COUNTERS

REQUESTS = Counter("playcount_api_requests_total", "API requests", ["method", "route", "status"])
LATENCY = Histogram(
    "playcount_api_request_seconds",
    "API request latency, from the request's arrival to the end of its response",
    ["method", "route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
DYNAMODB = Histogram(
    "playcount_api_dynamodb_seconds",
    "DynamoDB calls made by the API (cache loads and HEAD revalidations), as the API waits for them",
    ["operation"],
    buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
MIXED_READS = Counter(
    "playcount_api_reads_retried_total",
    "Reads of a date retried because a writer was applying it (a mix of two versions is never served)",
)
QUEUE_MESSAGES = Gauge("playcount_queue_messages", "Messages in a pipeline queue", ["queue", "state"])
DLQ_MESSAGES = Gauge("playcount_dlq_messages", "Messages in a queue's dead-letter queue", ["queue", "dlq"])
PIPELINE_COUNTER = Gauge("playcount_pipeline_count", "Pipeline counters from the ledger", ["counter"])
FRESHNESS_LAG = Gauge("playcount_freshness_lag_seconds", "Upload to queryable, for the last file written")
CACHE = Gauge(
    "playcount_api_cache_lookups",
    "Cache lookups since start: hit, miss (the client waited for a read), refresh (started in the "
    "background), revalidated (kept after a HEAD read showed the same version), load (a read of the items)",
    ["outcome"],
)
PIPELINE_UP = Gauge("playcount_api_pipeline_status_up", "1 when the last pipeline status read succeeded")


def publish_cache(cache: TtlCache) -> None:
    for outcome, count in (
        ("hit", cache.hits),
        ("miss", cache.misses),
        ("refresh", cache.refreshes),
        ("revalidated", cache.revalidated),
        ("load", cache.loads),
    ):
        CACHE.labels(outcome).set(count)


def publish(status: PipelineStatus | None) -> None:
    """Set the pipeline gauges from a status read (None: the read failed)."""
    PIPELINE_UP.set(0 if status is None else 1)
    if status is None:
        return
    for q in status.queues:
        QUEUE_MESSAGES.labels(q.name, "visible").set(q.visible)
        QUEUE_MESSAGES.labels(q.name, "in_flight").set(q.in_flight)
        QUEUE_MESSAGES.labels(q.name, "delayed").set(q.delayed)
        DLQ_MESSAGES.labels(q.name, q.dlq).set(q.dlq_depth)
    for name in COUNTERS:
        PIPELINE_COUNTER.labels(name).set(getattr(status, name))
    if status.freshness_lag_seconds is not None:
        FRESHNESS_LAG.set(status.freshness_lag_seconds)


class Telemetry(HttpMiddleware):
    """Counts every HTTP request by method, route template and status."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # the router records the matched route in the scope it shares with us
            # path_format: the template without converters (`{genre}`, not `{genre:genre}`)
            route = getattr(scope.get("route"), "path_format", "unmatched")
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)
            REQUESTS.labels(scope["method"], route, str(status)).inc()
