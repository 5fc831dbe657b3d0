"""The KPI job: exact daily and hourly KPIs from all validated events of the given dates.

One Spark action per batch:

1. read the dates' events, map ids to dimension codes (broadcast joins; `dims.py`);
2. de-duplicate on (user, track, listen_time) after one shuffle by user, and cache the result
   (integers only);
3. from the cache, aggregate per (date, genre, user), (date, genre, track), (date, hour,
   user), (date, hour, track) (then per artist) and (date, hour, age group). The per-user
   aggregates need no further shuffle, because the cache is already partitioned by user.
   Unique counts are two-level aggregates (group, then count the groups), not
   `countDistinct`. Top-N are a window limited before its shuffle (songs) or a `min` over
   (-listens, code) (artists, age groups);
4. collect the union of these small results: at most a few rows per (date, genre) and per
   (date, hour). Events never reach the driver, so the same job runs unchanged on a cluster.

An id unknown to the metadata keeps its events: they count in the hourly figures (with their
raw id standing in for the missing code) and in no genre.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Row, SparkSession, Window
from pyspark.sql import functions as F

from playcount.core.kpis import (
    AGE_GROUPS,
    RATIO_DIGITS,
    TOP_GENRES,
    TOP_SONGS,
    DayKpis,
    GenreDay,
    GenreRank,
    HourStats,
    SongRank,
)
from playcount.runner.catalog import DimFrames
from playcount.runner.dims import Dimensions

EVENTS_SCHEMA = "user_id string, track_id string, listen_time timestamp"
# a shuffle partition per this many bytes of input Parquet (about 1.3M events), at least one per core
BYTES_PER_PARTITION = 16 << 20
MAX_PARTITIONS = 200


@dataclass(frozen=True)
class Inputs:
    """The event partition directories (or URLs) to read, and their total size."""

    event_paths: Sequence[str]
    input_bytes: int = 0


def shuffle_partitions(input_bytes: int, parallelism: int) -> int:
    """Enough partitions to use every core, and more only when the input is large."""
    by_size = math.ceil(input_bytes / BYTES_PER_PARTITION)
    return max(1, min(MAX_PARTITIONS, max(parallelism, by_size)))


def _events(spark: SparkSession, inputs: Inputs, frames: DimFrames, dates: Sequence[dt.date]) -> DataFrame:
    """Distinct events of `dates` as codes, partitioned by user and cached."""
    partitions = shuffle_partitions(inputs.input_bytes, spark.sparkContext.defaultParallelism)
    spark.conf.set("spark.sql.shuffle.partitions", str(partitions))
    user, track = F.col("uidx"), F.col("tidx")
    return (
        spark.read.schema(EVENTS_SCHEMA)
        .parquet(*inputs.event_paths)
        .where(F.to_date("listen_time").isin(list(dates)))
        .join(F.broadcast(frames.songs), "track_id", "left")
        .join(F.broadcast(frames.users), "user_id", "left")
        .select(
            "listen_time",
            "uidx",
            F.when(user.isNull(), F.col("user_id")).alias("ux"),  # exact even for an unknown user
            "tidx",
            F.when(track.isNull(), F.col("track_id")).alias("tx"),
            "gidx",
            "duration_ms",
            "ag",
        )
        .repartition(partitions, "uidx", "ux")
        .dropDuplicates(["uidx", "ux", "tidx", "tx", "listen_time"])
        .select(
            F.to_date("listen_time").alias("date"),
            F.hour("listen_time").alias("hour"),
            "uidx",
            "ux",
            "tidx",
            "tx",
            "gidx",
            "duration_ms",
            "ag",
        )
        .persist(StorageLevel.MEMORY_AND_DISK)
    )


def _count(name: str = "n") -> Column:
    return F.count(F.lit(1)).alias(name)


def _best(frame: DataFrame, keys: list[str]) -> DataFrame:
    """Per `keys`, the `key` with the most `n`, ties by the smaller key."""
    best = F.min(F.struct((-F.col("n")).alias("neg"), F.col("key"))).alias("best")
    return frame.groupBy(*keys).agg(best).select(*keys, F.col("best.key").alias("key"))


def _out(frame: DataFrame, kind: str, **columns: str) -> DataFrame:
    """One result kind in the shared shape (kind, date, k1, k2, rank, a, b, c, ages)."""
    shape = {"k1": "long", "k2": "long", "rank": "int", "a": "long", "b": "long", "c": "long", "ages": "array<long>"}
    return frame.select(
        F.lit(kind).alias("kind"),
        "date",
        *[
            (F.col(columns[name]) if name in columns else F.lit(None)).cast(kind_).alias(name)
            for name, kind_ in shape.items()
        ],
    )


def _results(events: DataFrame, frames: DimFrames) -> DataFrame:
    genred = events.where(F.col("gidx").isNotNull())
    by_genre_user = genred.groupBy("date", "gidx", "uidx", "ux").agg(_count(), F.sum("duration_ms").alias("ms"))
    genres = by_genre_user.groupBy("date", "gidx").agg(
        F.sum("n").alias("listens"), _count("listeners"), F.sum("ms").alias("ms")
    )
    by_song = genred.groupBy("date", "gidx", "tidx").agg(_count())
    song_order = Window.partitionBy("date", "gidx").orderBy(F.desc("n"), F.asc("tidx"))
    top_songs = by_song.withColumn("rank", F.row_number().over(song_order)).where(F.col("rank") <= TOP_SONGS)

    by_hour_user = events.groupBy("date", "hour", "uidx", "ux").agg(_count(), F.max("ag").alias("ag"))
    per_age = [F.sum(F.when(F.col("ag") == i, F.col("n"))) for i in range(len(AGE_GROUPS))]
    hours = by_hour_user.groupBy("date", "hour").agg(
        F.sum("n").alias("listens"), _count("listeners"), F.array(*per_age).alias("ages")
    )
    by_hour_track = events.groupBy("date", "hour", "tidx", "tx").agg(_count())
    # summing `n` too keeps this aggregate identical to the artists' one, so they share its exchange
    tracks = by_hour_track.groupBy("date", "hour").agg(_count("tracks"), F.sum("n").alias("listens"))
    # a null-safe key infers no `tidx IS NOT NULL` below the aggregate (which would split the exchange)
    credits = F.broadcast(frames.song_artists.withColumnRenamed("tidx", "credit_tidx"))
    credited = by_hour_track.join(credits, by_hour_track["tidx"].eqNullSafe(credits["credit_tidx"]))
    artists = _best(
        credited.groupBy("date", "hour", F.col("aidx").alias("key")).agg(F.sum("n").alias("n")), ["date", "hour"]
    )
    return (
        _out(genres, "genre", k1="gidx", a="listens", b="listeners", c="ms")
        .unionByName(_out(top_songs, "song", k1="gidx", k2="tidx", rank="rank", a="n"))
        .unionByName(_out(hours, "hour", rank="hour", a="listens", b="listeners", ages="ages"))
        .unionByName(_out(tracks, "tracks", rank="hour", a="tracks", c="listens"))
        .unionByName(_out(artists, "artist", rank="hour", k1="key"))
    )


def compute(
    spark: SparkSession,
    inputs: Inputs,
    frames: DimFrames,
    dates: Sequence[dt.date],
    version: int,
    computed_at: dt.datetime,
) -> list[DayKpis]:
    """DayKpis for every date in `dates` (a date with no events gets empty KPIs)."""
    days = sorted(set(dates))
    rows: list[Row] = []
    if inputs.event_paths:
        events = _events(spark, inputs, frames, days)
        try:
            rows = _results(events, frames).collect()
        finally:
            events.unpersist()
    per_day: dict[dt.date, _Day] = defaultdict(_Day)
    for row in rows:
        per_day[row["date"]].add(row)
    return [per_day[d].assemble(d, frames.dims, version, computed_at) for d in days]


def _most_engaged(listens: list[int | None]) -> str | None:
    """The age group with the most listens, ties by the younger group (None: no known ages)."""
    counts = [n or 0 for n in listens]
    best = max(range(len(counts)), key=lambda i: (counts[i], -i))
    return AGE_GROUPS[best] if counts[best] else None


def _ratio(numerator: int, denominator: int) -> float:
    return round(numerator / denominator, RATIO_DIGITS) if denominator else 0.0


@dataclass
class _Day:
    """The collected rows of one date, by kind."""

    rows: dict[str, list[Row]] = field(default_factory=lambda: defaultdict(list))

    def add(self, row: Row) -> None:
        self.rows[row["kind"]].append(row)

    def assemble(self, day: dt.date, dims: Dimensions, version: int, computed_at: dt.datetime) -> DayKpis:
        songs: dict[int, list[SongRank]] = defaultdict(list)
        for r in self.rows["song"]:
            songs[r["k1"]].append(
                SongRank(
                    rank=r["rank"],
                    track_id=dims.track_ids[r["k2"]],
                    track_name=dims.track_names[r["k2"]],
                    artists=dims.track_artists[r["k2"]],
                    listen_count=r["a"],
                )
            )
        genres = sorted(
            (
                GenreDay(
                    genre=dims.genre(r["k1"]),
                    listen_count=r["a"],
                    unique_listeners=r["b"],
                    total_listening_time_ms=int(r["c"] or 0),
                    avg_listening_time_per_user_ms=_ratio(int(r["c"] or 0), r["b"]),
                    top_songs=sorted(songs[r["k1"]], key=lambda s: s.rank),
                )
                for r in self.rows["genre"]
            ),
            key=lambda g: g.genre,
        )
        ranked = sorted(genres, key=lambda g: (-g.listen_count, g.genre))[:TOP_GENRES]
        tracks = {r["rank"]: r["a"] for r in self.rows["tracks"]}
        artists = {r["rank"]: dims.artist(r["k1"]) for r in self.rows["artist"]}
        hours = [
            HourStats(
                hour=r["rank"],
                listen_count=r["a"],
                unique_listeners=r["b"],
                avg_listens_per_user=_ratio(r["a"], r["b"]),
                track_diversity_index=_ratio(tracks.get(r["rank"], 0), r["a"]),
                top_artist=artists.get(r["rank"]),
                most_engaged_age_group=_most_engaged(r["ages"]),
            )
            for r in sorted(self.rows["hour"], key=lambda r: r["rank"])
        ]
        return DayKpis(
            date=day,
            version=version,
            computed_at=computed_at,
            events=sum(h.listen_count for h in hours),
            genres=genres,
            top_genres=[
                GenreRank(rank=i + 1, genre=g.genre, listen_count=g.listen_count) for i, g in enumerate(ranked)
            ],
            hours=hours,
        )
