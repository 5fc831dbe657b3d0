"""A catalog of millions: does a file's cost follow the file, not the number of users and tracks?

One embedded stack, two phases:
1. a small catalog (5k users, 2k tracks), then three 10k-row stream files, each on its own date;
2. the catalog grown to 5M users and 1M tracks (one users file and one songs file, which
   repeat the small catalog's rows unchanged), then four more files drawn from the same ids.

Figures: each phase's median freshness (PutObject until the API serves the file's events) and
their ratio, the first file after the catalog change, the validator's and the runner's time
per file from their own logs, and the peak RSS of each pipeline process and of all of them at
one instant (`all_at_once`).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from bench.common import PeakRss, main, median
from bench.e2e import _distinct_per_day, _log_events, _log_marks, _start, _wait_served
from playcount.core import aws
from playcount.core.config import Settings
from playcount.devstack import generate
from playcount.devstack.sandbox import sandbox
from playcount.ops.pipeline import wait_until_idle

SMALL = (2_000, 5_000)  # tracks, users
LARGE = (1_000_000, 5_000_000)
QUICK_LARGE = (50_000, 200_000)


def _put_metadata(settings: Settings, s3: Any, songs: pa.Table, users: pa.Table, name: str) -> float:
    """Upload a songs and a users file; seconds until the pipeline is idle again."""
    t0 = time.monotonic()
    for prefix, table in ((settings.songs_prefix, songs), (settings.users_prefix, users)):
        s3.put_object(Bucket=settings.s3_bucket, Key=f"{prefix}{name}.csv", Body=generate.to_csv(table))
    if not wait_until_idle(settings, timeout=1800):
        raise RuntimeError("metadata not processed")
    return time.monotonic() - t0


def _files(
    settings: Settings, s3: Any, api: str, tables: list[pa.Table], log_dir: Path, name: str
) -> tuple[list[float], dict[str, Any]]:
    """Upload each file after the previous one is served; its freshness, and the services' own timings."""
    marks = _log_marks(log_dir)
    lags = []
    for i, table in enumerate(tables):
        expected = _distinct_per_day(table)
        t0 = time.monotonic()
        key = f"{settings.s3_raw_data_prefix}{name}/f{i:03d}.csv"
        s3.put_object(Bucket=settings.s3_bucket, Key=key, Body=generate.to_csv(table))
        lags.append(_wait_served(api, expected, timeout=600) - t0)
    judged = _log_events(log_dir, "ingest-validator", "object.judged")[marks["validator"] :]
    batches = _log_events(log_dir, "kpi-spark-runner", "batch.recomputed")[marks["runner"] :]
    timings = {
        "validator_s_per_file": [e["seconds"] for e in judged],
        "runner_compute_s": [e["compute_s"] for e in batches],
        "runner_songs_taking_part": [e.get("songs_taking_part") for e in batches],
        "runner_users_taking_part": [e.get("users_taking_part") for e in batches],
    }
    return lags, timings


def run(quick: bool) -> dict[str, Any]:
    n_tracks, n_users = QUICK_LARGE if quick else LARGE
    rows = 2_000 if quick else 10_000
    figures: dict[str, Any] = {"catalog_small": f"{SMALL[1]} users, {SMALL[0]} tracks"}
    figures["catalog_large"] = f"{n_users} users, {n_tracks} tracks"
    rng = np.random.default_rng(17)
    songs = generate.songs_table(rng, n_tracks)
    users = generate.users_table(rng, n_users)
    small_songs, small_users = songs.slice(0, SMALL[0]), users.slice(0, SMALL[1])
    cat = generate.catalog(small_songs, small_users)  # every file draws from the small catalog's ids
    base = dt.date(2024, 3, 1)
    tables = [generate.streams_table(rng, cat, rows, [base + dt.timedelta(days=i)]) for i in range(8)]
    with sandbox() as settings:
        log_dir = Path(settings.work_dir) / "logs"
        stack = _start(settings, log_dir)
        api = f"http://127.0.0.1:{settings.api_port}"
        s3 = aws.client(settings, "s3")
        meters = {name: PeakRss(proc.pid) for name, proc in stack.procs.items()}
        meters["all_at_once"] = PeakRss(pids=[proc.pid for proc in stack.procs.values()])
        try:
            for m in meters.values():
                m.__enter__()
            figures["small_metadata_s"] = round(_put_metadata(settings, s3, small_songs, small_users, "small"), 2)
            _files(settings, s3, api, tables[:1], log_dir, "warm")  # Spark's first jobs are slow
            small_lags, small_t = _files(settings, s3, api, tables[1:4], log_dir, "small")
            figures["large_metadata_s"] = round(_put_metadata(settings, s3, songs, users, "large"), 2)
            large_lags, large_t = _files(settings, s3, api, tables[4:], log_dir, "large")
        finally:
            for m in meters.values():
                m.__exit__(None, None, None)
            codes = stack.stop()
    figures["small_freshness_s"] = [round(x, 2) for x in small_lags]
    figures["large_freshness_s"] = [round(x, 2) for x in large_lags]
    figures["small_freshness_p50_s"] = round(median(small_lags), 2)
    figures["large_freshness_p50_s"] = round(median(large_lags), 2)
    figures["large_over_small_p50"] = round(median(large_lags) / median(small_lags), 2)
    figures["first_file_after_catalog_change_s"] = round(large_lags[0], 2)
    for phase, t in (("small", small_t), ("large", large_t)):
        figures[f"{phase}_validator_s_per_file"] = t["validator_s_per_file"]
        figures[f"{phase}_runner_compute_s"] = t["runner_compute_s"]
        figures[f"{phase}_runner_rows_taking_part"] = list(
            zip(t["runner_songs_taking_part"], t["runner_users_taking_part"], strict=True)
        )
    for name, m in meters.items():
        figures[f"peak_rss_mb_{name}"] = m.mb
    figures["clean_exit_codes"] = "all 0" if all(c == 0 for c in codes.values()) else str(codes)
    return figures


if __name__ == "__main__":
    main("catalog", run)
