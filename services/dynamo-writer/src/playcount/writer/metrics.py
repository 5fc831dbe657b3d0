"""The writer's own Prometheus metrics (the worker runtime's are in `playcount.core.metrics`)."""

from __future__ import annotations

from prometheus_client import Histogram

FRESHNESS = Histogram(
    "playcount_freshness_seconds",
    "Upload to queryable, per file",
    buckets=(0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300),
)
