"""The KPI job: exact daily and hourly KPIs from all validated events of the given dates.

Only aggregates reach the driver (at most dates x genres rows); the events never do, so the
same job runs unchanged on a standalone or YARN/Kubernetes cluster.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
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


@dataclass(frozen=True)
class Inputs:
    """Where the job reads: event partition directories, and the metadata snapshots."""

    event_paths: Sequence[str]
    songs_path: str | None
    users_path: str | None


def _age_group(age: Column) -> Column:
    bins = F.when(age < 18, F.lit(0))
    for i, label in enumerate(AGE_GROUPS[1:-1], start=1):
        low, high = (int(x) for x in label.split("-"))
        bins = bins.when((age >= low) & (age <= high), F.lit(i))
    return bins.when(age >= 65, F.lit(len(AGE_GROUPS) - 1))


def _events(spark: SparkSession, inputs: Inputs, dates: Iterable[dt.date]) -> DataFrame:
    wanted = [d.isoformat() for d in dates]
    events = (
        spark.read.parquet(*inputs.event_paths)
        .select("user_id", "track_id", "listen_time")
        .dropDuplicates(["user_id", "track_id", "listen_time"])
        .withColumn("date", F.date_format("listen_time", "yyyy-MM-dd"))
        .withColumn("hour", F.hour("listen_time"))
        .where(F.col("date").isin(wanted))
    )
    if inputs.songs_path:
        songs = spark.read.parquet(inputs.songs_path).select(
            "track_id", "track_name", "artists", F.col("track_genre").alias("genre"), "duration_ms"
        )
    else:
        songs = spark.createDataFrame(
            [], "track_id string, track_name string, artists string, genre string, duration_ms long"
        )
    if inputs.users_path:
        users = spark.read.parquet(inputs.users_path).select("user_id", "user_age")
    else:
        users = spark.createDataFrame([], "user_id string, user_age long")
    return events.join(F.broadcast(songs), "track_id", "left").join(F.broadcast(users), "user_id", "left")


def compute(
    spark: SparkSession, inputs: Inputs, dates: Sequence[dt.date], version: int, computed_at: dt.datetime
) -> list[DayKpis]:
    """DayKpis for every date in `dates` (a date with no events gets empty KPIs)."""
    if not inputs.event_paths:
        return [_assemble(d, version, computed_at, [], [], [], [], []) for d in sorted(set(dates))]
    joined = _events(spark, inputs, dates).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        genre_rows = (
            joined.where(F.col("genre").isNotNull())
            .groupBy("date", "genre")
            .agg(
                F.count(F.lit(1)).alias("listen_count"),
                F.countDistinct("user_id").alias("unique_listeners"),
                F.sum("duration_ms").alias("total_ms"),
            )
            .collect()
        )
        song_window = Window.partitionBy("date", "genre").orderBy(F.desc("listen_count"), F.asc("track_id"))
        song_rows = (
            joined.where(F.col("genre").isNotNull())
            .groupBy("date", "genre", "track_id")
            .agg(
                F.count(F.lit(1)).alias("listen_count"),
                F.first("track_name").alias("track_name"),
                F.first("artists").alias("artists"),
            )
            .withColumn("rank", F.row_number().over(song_window))
            .where(F.col("rank") <= TOP_SONGS)
            .collect()
        )
        hour_rows = (
            joined.groupBy("date", "hour")
            .agg(
                F.count(F.lit(1)).alias("listen_count"),
                F.countDistinct("user_id").alias("unique_listeners"),
                F.countDistinct("track_id").alias("distinct_tracks"),
            )
            .collect()
        )
        artist_rows = _top_per_hour(
            joined.select("date", "hour", F.explode(F.split(F.coalesce("artists", F.lit("")), ";")).alias("a"))
            .select("date", "hour", F.trim("a").alias("key"))
            .where(F.col("key") != ""),
            F.asc("key"),
        )
        age_rows = _top_per_hour(
            joined.select("date", "hour", _age_group(F.col("user_age")).alias("key")).where(F.col("key").isNotNull()),
            F.asc("key"),
        )
    finally:
        joined.unpersist()
    return [
        _assemble(
            d,
            version,
            computed_at,
            [r for r in genre_rows if r["date"] == d.isoformat()],
            [r for r in song_rows if r["date"] == d.isoformat()],
            [r for r in hour_rows if r["date"] == d.isoformat()],
            [r for r in artist_rows if r["date"] == d.isoformat()],
            [r for r in age_rows if r["date"] == d.isoformat()],
        )
        for d in sorted(set(dates))
    ]


def _top_per_hour(frame: DataFrame, tie_break: Column) -> list:
    window = Window.partitionBy("date", "hour").orderBy(F.desc("n"), tie_break)
    return (
        frame.groupBy("date", "hour", "key")
        .agg(F.count(F.lit(1)).alias("n"))
        .withColumn("r", F.row_number().over(window))
        .where(F.col("r") == 1)
        .collect()
    )


def _ratio(numerator: int, denominator: int) -> float:
    return round(numerator / denominator, RATIO_DIGITS) if denominator else 0.0


def _assemble(day, version, computed_at, genre_rows, song_rows, hour_rows, artist_rows, age_rows) -> DayKpis:  # type: ignore[no-untyped-def]
    songs: dict[str, list[SongRank]] = defaultdict(list)
    for r in song_rows:
        songs[r["genre"]].append(
            SongRank(
                rank=r["rank"],
                track_id=r["track_id"],
                track_name=r["track_name"] or "",
                artists=r["artists"] or "",
                listen_count=r["listen_count"],
            )
        )
    genres = sorted(
        (
            GenreDay(
                genre=r["genre"],
                listen_count=r["listen_count"],
                unique_listeners=r["unique_listeners"],
                total_listening_time_ms=int(r["total_ms"] or 0),
                avg_listening_time_per_user_ms=_ratio(int(r["total_ms"] or 0), r["unique_listeners"]),
                top_songs=sorted(songs[r["genre"]], key=lambda s: s.rank),
            )
            for r in genre_rows
        ),
        key=lambda g: g.genre,
    )
    ranked = sorted(genres, key=lambda g: (-g.listen_count, g.genre))[:TOP_GENRES]
    top_genres = [GenreRank(rank=i + 1, genre=g.genre, listen_count=g.listen_count) for i, g in enumerate(ranked)]
    artists = {r["hour"]: r["key"] for r in artist_rows}
    ages = {r["hour"]: AGE_GROUPS[r["key"]] for r in age_rows}
    hours = [
        HourStats(
            hour=r["hour"],
            listen_count=r["listen_count"],
            unique_listeners=r["unique_listeners"],
            avg_listens_per_user=_ratio(r["listen_count"], r["unique_listeners"]),
            track_diversity_index=_ratio(r["distinct_tracks"], r["listen_count"]),
            top_artist=artists.get(r["hour"]),
            most_engaged_age_group=ages.get(r["hour"]),
        )
        for r in sorted(hour_rows, key=lambda r: r["hour"])
    ]
    return DayKpis(
        date=day,
        version=version,
        computed_at=computed_at,
        events=sum(h.listen_count for h in hours),
        genres=genres,
        top_genres=top_genres,
        hours=hours,
    )
