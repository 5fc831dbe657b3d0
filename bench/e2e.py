"""End-to-end figures on the embedded stack: freshness, throughput, and each service's peak memory.

Freshness: with services warm, the time from PutObject of one 10k-row stream file to the API
serving KPIs that include it (each file has its own date, so "includes it" is exact: the
day's event count served by `/days` equals the file's distinct events). Throughput: N events
in many files uploaded at once over 7 days, until the API serves the exact event count of
every day. The API's read cache (API_CACHE_SECONDS) is part of what is measured.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import os
import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bench.common import PeakRss, main, median, percentile
from playcount.core import aws
from playcount.core.config import Settings
from playcount.devstack import emulator, generate
from playcount.devstack.sandbox import sandbox
from playcount.devstack.stack import Stack
from playcount.ops.pipeline import queue_depths, wait_until_idle

CACHE_SECONDS = "0.25"


def _days_served(api: str) -> dict[str, int]:
    try:
        with urllib.request.urlopen(f"{api}/days", timeout=5) as r:
            return {d["date"]: d["events"] for d in json.load(r)["days"]}
    except OSError:
        return {}


def _distinct_per_day(table: pa.Table) -> dict[str, int]:
    unique = table.group_by(["user_id", "track_id", "listen_time"]).aggregate([])
    days = pc.utf8_slice_codeunits(unique["listen_time"], 0, 10)
    counts = pc.value_counts(days)
    return dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True))


def _wait_served(api: str, expected: dict[str, int], timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        served = _days_served(api)
        if all(served.get(d) == n for d, n in expected.items()):
            return time.monotonic()
        time.sleep(0.1)
    raise TimeoutError(f"API did not serve {expected} within {timeout} s (last: {_days_served(api)})")


def _log_events(log_dir: Path, service: str, event: str) -> list[dict[str, Any]]:
    path = log_dir / f"{service}.log"
    found = []
    for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
        if line.startswith("{") and f'"{event}"' in line:
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return found


def _profile(log_dir: Path, phase: str, since: dict[str, int]) -> dict[str, Any]:
    """Where the time went, per stage, from the services' own logs (events after `since`)."""
    judged = _log_events(log_dir, "ingest-validator", "object.judged")[since.get("validator", 0) :]
    batches = _log_events(log_dir, "kpi-spark-runner", "batch.recomputed")[since.get("runner", 0) :]
    applied = _log_events(log_dir, "dynamo-writer", "result.applied")[since.get("writer", 0) :]
    out: dict[str, Any] = {f"{phase}_runner_batches": len(batches), f"{phase}_writer_results": len(applied)}
    if judged:
        out[f"{phase}_validator_s_per_file_median"] = round(median([e["seconds"] for e in judged]), 3)
    if batches:
        for part in ("stage_s", "compute_s", "emit_s"):
            out[f"{phase}_runner_{part}_median"] = round(median([e[part] for e in batches]), 3)
    if applied:
        out[f"{phase}_writer_s_per_date_median"] = round(median([e["seconds"] for e in applied]), 3)
        out[f"{phase}_writer_results_skipped"] = sum(bool(e["skipped"]) for e in applied)
    return out


def _log_marks(log_dir: Path) -> dict[str, int]:
    return {
        "validator": len(_log_events(log_dir, "ingest-validator", "object.judged")),
        "runner": len(_log_events(log_dir, "kpi-spark-runner", "batch.recomputed")),
        "writer": len(_log_events(log_dir, "dynamo-writer", "result.applied")),
    }


def _start(settings: Settings, log_dir: Path) -> Stack:
    stack = Stack(
        env={**settings.to_env(), **emulator.EMBEDDED_CREDENTIALS, "LOG_FORMAT": "json"},
        log_dir=log_dir,
        restart=False,
    )
    stack.start()
    return stack


def run(quick: bool) -> dict[str, Any]:
    n_fresh = 3 if quick else 20
    fresh_rows = 2_000 if quick else 10_000
    bulk_files = 5 if quick else 100
    bulk_events = 50_000 if quick else 10_000_000
    figures: dict[str, Any] = {}
    with sandbox(api_cache_seconds=float(CACHE_SECONDS)) as settings:
        log_dir = Path(settings.work_dir) / "logs"
        stack = _start(settings, log_dir)
        api = f"http://127.0.0.1:{settings.api_port}"
        s3 = aws.client(settings, "s3")
        try:
            songs, users, cat = generate.dataset(seed=5, n_tracks=3000 if not quick else 800, n_users=5000)
            s3.put_object(
                Bucket=settings.s3_bucket, Key=f"{settings.songs_prefix}songs.csv", Body=generate.to_csv(songs)
            )
            s3.put_object(
                Bucket=settings.s3_bucket, Key=f"{settings.users_prefix}users.csv", Body=generate.to_csv(users)
            )
            if not wait_until_idle(settings, timeout=300):
                raise RuntimeError("metadata not processed")
            rng = np.random.default_rng(9)
            # warm-up: one file through every service (Spark's first job is slow)
            fresh_base = dt.date(2024, 1, 1)
            files = []
            for i in range(n_fresh + 1):
                table = generate.streams_table(rng, cat, fresh_rows, [fresh_base + dt.timedelta(days=i)])
                files.append((table, generate.to_csv(table)))
            lags = []
            marks: dict[str, int] = {}
            for i, (table, body) in enumerate(files):
                if i == 1:  # profile the warm files only
                    marks = _log_marks(log_dir)
                expected = _distinct_per_day(table)
                t0 = time.monotonic()
                s3.put_object(
                    Bucket=settings.s3_bucket, Key=f"{settings.s3_raw_data_prefix}fresh/f{i:03d}.csv", Body=body
                )
                done = _wait_served(api, expected, timeout=300)
                if i > 0:
                    lags.append(done - t0)
                else:
                    figures["first_file_cold_s"] = round(done - t0, 2)
            figures["freshness_files"] = len(lags)
            figures["freshness_rows_per_file"] = fresh_rows
            figures["freshness_p50_s"] = round(median(lags), 3)
            figures["freshness_p95_s"] = round(percentile(lags, 95), 3)
            figures["freshness_max_s"] = round(max(lags), 3)
            figures.update(_profile(log_dir, "freshness", marks))
            marks = _log_marks(log_dir)
            figures.update(_throughput(settings, stack, api, s3, rng, cat, bulk_files, bulk_events))
            figures.update(_profile(log_dir, "throughput", marks))
        finally:
            codes = stack.stop()
            if os.environ.get("BENCH_KEEP_LOGS"):  # the services' logs, for a timeline of the run
                shutil.copytree(log_dir, os.environ["BENCH_KEEP_LOGS"], dirs_exist_ok=True)
            figures["clean_exit_codes"] = "all 0" if all(c == 0 for c in codes.values()) else str(codes)
    figures["api_cache_seconds"] = float(CACHE_SECONDS)
    return figures


def _throughput(
    settings: Settings, stack: Stack, api: str, s3: Any, rng: np.random.Generator, cat: Any, n_files: int, n_events: int
) -> dict[str, Any]:
    days = [dt.date(2025, 6, 23) + dt.timedelta(days=i) for i in range(7)]
    rows = n_events // n_files
    bodies: list[bytes] = []
    expected: dict[str, int] = {}
    tables = []
    for _ in range(n_files):
        table = generate.streams_table(rng, cat, rows, days)
        tables.append(table)
        bodies.append(generate.to_csv(table))
    expected = _distinct_per_day(pa.concat_tables(tables))
    del tables
    meters = {name: PeakRss(proc.pid) for name, proc in stack.procs.items()}
    for m in meters.values():
        m.__enter__()
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda ib: s3.put_object(
                    Bucket=settings.s3_bucket, Key=f"{settings.s3_raw_data_prefix}bulk/b{ib[0]:04d}.csv", Body=ib[1]
                ),
                enumerate(bodies),
            )
        )
    uploaded = time.monotonic()
    done = _wait_served(api, expected, timeout=3600)
    for m in meters.values():
        m.__exit__(None, None, None)
    elapsed = done - t0
    dead = sum(q.dlq_depth for q in queue_depths(settings))
    out: dict[str, Any] = {
        "throughput_files": n_files,
        "throughput_events": rows * n_files,
        "throughput_upload_s": round(uploaded - t0, 2),
        "throughput_end_to_end_s": round(elapsed, 2),
        "throughput_events_per_s": round(rows * n_files / elapsed),
        "throughput_dlq_messages": dead,
    }
    for name, m in meters.items():
        out[f"peak_rss_mb_{name}"] = m.mb
    return out


if __name__ == "__main__":
    main("e2e", run)
