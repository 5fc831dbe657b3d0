"""Prometheus metrics shared by the workers (the API adds its own per-route metrics)."""

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
ROWS = Counter("playcount_rows_total", "Rows judged by the validator, by outcome", ["outcome"])
FILES = Counter("playcount_files_total", "Files judged by the validator, by outcome", ["outcome"])
DATES = Counter("playcount_dates_total", "Dates recomputed (runner) or written (writer)", ["service"])
FRESHNESS = Histogram(
    "playcount_freshness_seconds",
    "Upload to queryable, per file",
    buckets=(0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300),
)
