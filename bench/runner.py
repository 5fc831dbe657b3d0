"""The KPI engine: Spark's recompute beside DuckDB computing the same KPIs over the same Parquet.

Figures: cold start (session + first action), warm latency for one 10k-row file's date, the
recompute of N events over 7 days (median of runs), DuckDB on the same staged files in the
same run (the ratio), and the peak RSS of the process tree (Python driver + Spark's JVM).
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench.common import PeakRss, main, median
from playcount.core import snapshots
from playcount.devstack import generate
from playcount.runner.compute import Inputs, Metadata, compute
from playcount.runner.config import RunnerSettings

DAYS = [dt.date(2025, 6, 23) + dt.timedelta(days=i) for i in range(7)]
AT = dt.datetime(2025, 7, 1, tzinfo=dt.UTC)

DUCKDB_KPIS = """
WITH ev AS (SELECT DISTINCT user_id, track_id, listen_time FROM read_parquet({events})),
j AS (
  SELECT ev.user_id, ev.track_id, strftime(ev.listen_time AT TIME ZONE 'UTC', '%Y-%m-%d') AS d,
         hour(ev.listen_time AT TIME ZONE 'UTC') AS h, s.track_genre AS genre, s.duration_ms, s.artists, u.user_age
  FROM ev LEFT JOIN read_parquet('{songs}') s USING (track_id) LEFT JOIN read_parquet('{users}') u USING (user_id)
)
SELECT
 (SELECT count(*) FROM (SELECT d, genre, count(*), count(DISTINCT user_id), sum(duration_ms) FROM j GROUP BY d, genre)),
 (SELECT count(*) FROM (SELECT *, row_number() OVER (PARTITION BY d, genre ORDER BY n DESC, track_id) r
      FROM (SELECT d, genre, track_id, count(*) n FROM j GROUP BY d, genre, track_id)) WHERE r <= 3),
 (SELECT count(*) FROM (SELECT d, h, count(*), count(DISTINCT user_id), count(DISTINCT track_id) FROM j GROUP BY d, h)),
 (SELECT count(*) FROM (SELECT *, row_number() OVER (PARTITION BY d, h ORDER BY n DESC, a) r
      FROM (SELECT d, h, a, count(*) n FROM (SELECT d, h, trim(unnest(string_split(artists, ';'))) a FROM j)
            WHERE a <> '' GROUP BY d, h, a)) WHERE r = 1),
 (SELECT count(*) FROM (SELECT *, row_number() OVER (PARTITION BY d, h ORDER BY n DESC, g) r
      FROM (SELECT d, h, g, count(*) n FROM (SELECT d, h, CASE WHEN user_age < 18 THEN 0 WHEN user_age <= 24 THEN 1
              WHEN user_age <= 34 THEN 2 WHEN user_age <= 44 THEN 3 WHEN user_age <= 54 THEN 4
              WHEN user_age <= 64 THEN 5 ELSE 6 END g FROM j) GROUP BY d, h, g)) WHERE r = 1)
"""


def _lake(root: Path, n_events: int, n_files: int) -> tuple[Inputs, Inputs]:
    """All 7 days in `n_files` files per date partition, plus one 10k-row file on its own date."""
    songs, users, cat = generate.dataset(seed=3, n_tracks=5000, n_users=20000)
    for kind, table in (("songs", songs), ("users", users)):
        pq.write_table(snapshots.segment_rows(kind, 1, table), root / f"{kind}.parquet")  # type: ignore[arg-type]
    rng = np.random.default_rng(1)
    for i in range(n_files):
        table = generate.streams_table(rng, cat, n_events // n_files, DAYS)
        times = pc.assume_timezone(pc.strptime(table["listen_time"], format="%Y-%m-%d %H:%M:%S", unit="us"), "UTC")
        table = table.set_column(2, "listen_time", times)
        days = pc.strftime(times, format="%Y-%m-%d")
        for day in DAYS:
            part = root / "lake" / f"listen_date={day.isoformat()}"
            part.mkdir(parents=True, exist_ok=True)
            pq.write_table(table.filter(pc.equal(days, day.isoformat())), part / f"f{i:04d}.parquet")
    one_day = dt.date(2025, 7, 1)
    single = generate.streams_table(rng, cat, 10_000, [one_day])
    times = pc.assume_timezone(pc.strptime(single["listen_time"], format="%Y-%m-%d %H:%M:%S", unit="us"), "UTC")
    part = root / "lake" / f"listen_date={one_day.isoformat()}"
    part.mkdir(parents=True)
    pq.write_table(single.set_column(2, "listen_time", times), part / "single.parquet")
    return _inputs([root / "lake" / f"listen_date={d.isoformat()}" for d in DAYS]), _inputs([part])


def _inputs(partitions: list[Path]) -> Inputs:
    size = sum(f.stat().st_size for p in partitions for f in p.glob("*.parquet"))
    return Inputs(event_paths=[str(p) for p in partitions], input_bytes=size)


def run(quick: bool) -> dict[str, Any]:
    n_events = 300_000 if quick else 10_000_000
    runs = 1 if quick else 3
    figures: dict[str, Any] = {"events": n_events, "days": len(DAYS)}
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as tmp, PeakRss() as rss:
        all_days, single = _lake(Path(tmp), n_events, 10 if quick else 50)
        from playcount.runner.session import spark_session

        t0 = time.perf_counter()
        spark = spark_session(RunnerSettings.load({"SPARK_MASTER": "local[*]"}))
        spark.range(1).count()
        figures["cold_start_s"] = round(time.perf_counter() - t0, 2)
        root = Path(tmp)
        try:
            frames = Metadata(songs=[str(root / "songs.parquet")], users=[str(root / "users.parquet")])
            compute(spark, single, frames, [dt.date(2025, 7, 1)], 1, AT)  # first job pays the planner's warm-up
            warm, duck_one = [], []
            single_files = [str(p) for d in single.event_paths for p in Path(d).glob("*.parquet")]
            for _ in range(5):  # side by side, so both see the same machine
                t = time.perf_counter()
                compute(spark, single, frames, [dt.date(2025, 7, 1)], 1, AT)
                warm.append(time.perf_counter() - t)
                t = time.perf_counter()
                duckdb.sql(DUCKDB_KPIS.format(events=single_files, songs=root / "songs.parquet",
                                              users=root / "users.parquet")).fetchall()  # fmt: skip
                duck_one.append(time.perf_counter() - t)
            figures["warm_one_10k_file_s"] = round(median(warm), 3)
            figures["duckdb_one_10k_file_s"] = round(median(duck_one), 3)
            figures["one_file_spark_over_duckdb"] = round(median(warm) / median(duck_one), 1)
            spark_s, duck_s = [], []
            for _ in range(runs):
                t = time.perf_counter()
                out = compute(spark, all_days, frames, DAYS, 1, AT)
                spark_s.append(time.perf_counter() - t)
                t = time.perf_counter()
                files = [str(p) for d in all_days.event_paths for p in Path(d).glob("*.parquet")]
                duckdb.sql(DUCKDB_KPIS.format(events=files, songs=root / "songs.parquet",
                                              users=root / "users.parquet")).fetchall()  # fmt: skip
                duck_s.append(time.perf_counter() - t)
        finally:
            spark.stop()
    figures["distinct_events"] = sum(r.events for r in out.days)
    figures["spark_recompute_s"] = round(median(spark_s), 2)
    figures["duckdb_same_kpis_s"] = round(median(duck_s), 2)
    figures["spark_over_duckdb"] = round(median(spark_s) / median(duck_s), 2)
    figures["spark_events_per_s"] = round(n_events / median(spark_s))
    figures["peak_rss_mb_driver_and_jvm"] = rss.mb
    return figures


if __name__ == "__main__":
    main("runner", run)
