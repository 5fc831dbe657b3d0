"""Prometheus metrics of the worker runtime, shared by the workers; each service adds its own in its `metrics.py`."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter("playcount_messages_total", "SQS messages settled, by outcome", ["service", "outcome"])
HANDLE_SECONDS = Histogram(
    "playcount_batch_seconds",
    "Time to handle one batch of messages",
    ["service"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
BUSY = Gauge("playcount_busy", "1 while the worker is handling a batch", ["service"])
QUEUE_UP = Gauge(
    "playcount_queue_up",
    "1 while the worker's calls to AWS get through (0 from a failed attempt until its next good poll)",
    ["service"],
)
LAST_POLL = Gauge("playcount_last_poll_timestamp_seconds", "When the worker last polled its queue", ["service"])
# counted by two services (one series per service): dates recomputed (runner) or written (writer)
DATES = Counter("playcount_dates_total", "Dates recomputed (runner) or written (writer)", ["service"])
