"""Run the real KPI job on a tiny synthetic lake at start-up, so the first real batch is warm.

A cold JVM pays for Spark's planner, for compiling the job's ~100 generated classes and for
the JIT, on the first few jobs. The generated classes are cached by their source, and the
synthetic job has the same plan shape as a real one, so a real batch finds them compiled.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import SparkSession

from playcount.core import parquet, snapshots
from playcount.runner.compute import Inputs, Metadata, compute

DAYS = (dt.date(2000, 1, 1), dt.date(2000, 1, 2))


def _tables(n_events: int) -> tuple[pa.Table, pa.Table, list[pa.Table]]:
    songs = pa.table(
        {
            "track_id": [f"t{i}" for i in range(20)],
            "track_name": [f"song {i}" for i in range(20)],
            "artists": [f"a{i % 7}; a{i % 3}" for i in range(20)],
            "track_genre": [f"g{i % 4}" for i in range(20)],
            "duration_ms": pa.array([1000 * (i + 1) for i in range(20)], pa.int64()),
        }
    )
    users = pa.table({"user_id": [f"u{i}" for i in range(30)], "user_age": pa.array([12 + 2 * i for i in range(30)])})
    parts = []
    for day in DAYS:
        start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        parts.append(
            pa.table(
                {
                    "user_id": [f"u{i % 31}" for i in range(n_events)],  # u30 is unknown to the metadata
                    "track_id": [f"t{i % 21}" for i in range(n_events)],  # and so is t20
                    "listen_time": [start + dt.timedelta(seconds=97 * i) for i in range(n_events)],
                },
                schema=parquet.EVENTS,
            )
        )
    return songs, users, parts


def _segment(directory: Path, kind: snapshots.Kind, seq: int, table: pa.Table) -> str:
    rows = snapshots.segment_rows(kind, seq, table)
    path = directory / f"{kind}-{seq}.parquet"
    pq.write_table(rows, path)
    return str(path)


def warm_up(spark: SparkSession, work_dir: Path, runs: int, n_events: int = 500) -> None:
    """Run the KPI job `runs` times on synthetic events; leaves nothing behind.

    The runs alternate between a catalog of one segment per kind and of two (a correction), the
    two shapes the job's plan takes.
    """
    if runs <= 0:
        return
    work_dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="warmup-", dir=work_dir))
    songs, users, parts = _tables(n_events)
    try:
        one = Metadata(songs=[_segment(root, "songs", 1, songs)], users=[_segment(root, "users", 1, users)])
        two = Metadata(
            songs=[*one.songs, _segment(root, "songs", 2, songs.slice(0, 5))],
            users=[*one.users, _segment(root, "users", 2, users.slice(0, 5))],
        )
        paths = []
        for day, part in zip(DAYS, parts, strict=True):
            directory = root / f"listen_date={day.isoformat()}"
            directory.mkdir()
            pq.write_table(part, directory / "events.parquet")
            paths.append(str(directory))
        for run in range(runs):
            metadata = one if run % 2 == 0 else two
            compute(spark, Inputs(paths, input_bytes=0), metadata, list(DAYS), 1, dt.datetime.now(dt.UTC))
    finally:
        shutil.rmtree(root, ignore_errors=True)
