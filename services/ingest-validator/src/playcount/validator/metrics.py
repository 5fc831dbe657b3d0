"""The validator's own Prometheus metrics (the worker runtime's are in `playcount.core.metrics`)."""

from __future__ import annotations

from prometheus_client import Counter

ROWS = Counter("playcount_rows_total", "Rows judged by the validator, by outcome", ["outcome"])
FILES = Counter("playcount_files_total", "Files judged by the validator, by outcome", ["outcome"])
