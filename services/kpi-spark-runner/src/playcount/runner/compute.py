"""The KPI job: exact daily and hourly KPIs from all validated events of the given dates.

One Spark action per batch:

1. read the dates' events and de-duplicate them on (user, track, listen_time);
2. take part of the metadata: only the catalog rows whose id the batch's events reference
   (a left semi-join of each catalog scan with the batch's distinct ids), the newest segment's
   row per id (`core.snapshots`). Nothing the size of the catalog is encoded, collected or
   broadcast: the catalog is scanned where it lies, and only the batch's ids are broadcast;
3. join events to those rows and aggregate per (date, genre), per (date, genre, track) (top
   songs), per (date, hour) (listens, listeners, age groups), per (date, hour, track)
   (diversity, and per artist for the top artist);
4. collect the union of these small results: at most a few rows per (date, genre) and per
   (date, hour). Events never reach the driver, so the same job runs unchanged on a cluster.

Ranks compare the names themselves (Spark orders strings by their UTF-8 bytes, which is code
point order), so "most listens, ties by the smaller name" needs no dictionary of codes.

Two plans (`Plan`): a batch whose events fit in one task runs as one partition from the scan
on, so its aggregates need no exchange at all; a larger batch is hash-partitioned by user
(the per-user aggregates reuse that partitioning) into partitions sized from its input.

An id unknown to the metadata keeps its events: they count in the hourly figures and in no
genre.
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
    AGE_LOWER_BOUNDS,
    RATIO_DIGITS,
    TOP_GENRES,
    TOP_SONGS,
    DayKpis,
    GenreDay,
    GenreRank,
    HourStats,
    SongRank,
)
from playcount.core.snapshots import SEQ

EVENTS_SCHEMA = "user_id string, track_id string, listen_time timestamp"
SONGS_SCHEMA = f"track_id string, track_name string, artists string, track_genre string, duration_ms long, {SEQ} long"
USERS_SCHEMA = f"user_id string, user_age long, {SEQ} long"
# a shuffle partition per this many bytes of input Parquet (about 1.3M events), at least one per core
BYTES_PER_PARTITION = 16 << 20
MAX_PARTITIONS = 200
# a batch up to this size of event Parquet (about 1.3M events) runs as one task: no exchange
SMALL_BATCH_BYTES = 16 << 20
# a larger batch broadcasts its ids and its catalog rows while it has at most this many distinct
# tracks or users (about 100 MB of rows at most); beyond, they join by shuffle
BROADCAST_IDS = 1_000_000


@dataclass(frozen=True)
class Inputs:
    """The event partition directories (or URLs) to read, and their total size."""

    event_paths: Sequence[str]
    input_bytes: int = 0


@dataclass(frozen=True)
class Metadata:
    """The catalog's segment files (or URLs) per kind, oldest first (`core.snapshots`)."""

    songs: Sequence[str] = ()
    users: Sequence[str] = ()


@dataclass(frozen=True)
class Plan:
    """How a batch is laid out: one partition end to end, or hash-partitioned by user."""

    partitions: int
    single: bool

    @classmethod
    def for_input(cls, input_bytes: int, parallelism: int) -> Plan:
        if input_bytes <= SMALL_BATCH_BYTES:
            return cls(partitions=1, single=True)
        return cls(partitions=shuffle_partitions(input_bytes, parallelism), single=False)


@dataclass(frozen=True)
class TakingPart:
    """What the job's own counters say took part: metadata rows, and the batch's distinct ids."""

    song_rows: int = 0
    user_rows: int = 0
    distinct_tracks: int = 0
    distinct_users: int = 0


@dataclass(frozen=True)
class Computed:
    days: list[DayKpis]
    taking_part: TakingPart
    plan: Plan | None


def shuffle_partitions(input_bytes: int, parallelism: int) -> int:
    """Enough partitions to use every core, and more only when the input is large."""
    by_size = math.ceil(input_bytes / BYTES_PER_PARTITION)
    return max(1, min(MAX_PARTITIONS, max(parallelism, by_size)))


def _count(name: str = "n") -> Column:
    return F.count(F.lit(1)).alias(name)


def _events(spark: SparkSession, inputs: Inputs, dates: Sequence[dt.date], plan: Plan) -> DataFrame:
    """The distinct events of `dates`, laid out by the plan."""
    read = spark.read.schema(EVENTS_SCHEMA).parquet(*inputs.event_paths)
    read = read.where(F.to_date("listen_time").isin(list(dates)))
    laid_out = read.coalesce(1) if plan.single else read.repartition(plan.partitions, "user_id")
    return laid_out.dropDuplicates(["user_id", "track_id", "listen_time"])


def _taking_part(
    spark: SparkSession, paths: Sequence[str], schema: str, id_column: str, ids: DataFrame, small: bool
) -> DataFrame:
    """The current catalog row of each id in `ids` only: a semi-join of the scan, newest segment first.

    The batch's ids are the hash table (broadcast when `small`, else joined by shuffle): the scan
    streams past it and keeps its matches, so no task ever holds the catalog.
    """
    if not paths:
        return spark.createDataFrame([], schema).drop(SEQ)
    scan = spark.read.schema(schema).parquet(*paths)
    rows = scan.join(F.broadcast(ids) if small else ids.hint("shuffle_hash"), id_column, "left_semi")
    if len(paths) > 1:  # an id corrected by a later segment: its newest row wins
        columns = [c for c in scan.columns if c not in (id_column, SEQ)]
        newest = F.max(F.struct(SEQ, *columns)).alias("row")
        rows = rows.groupBy(id_column).agg(newest).select(id_column, *[f"row.{c}" for c in columns])
    return rows.drop(SEQ)


def _joined(events: DataFrame, songs: DataFrame, users: DataFrame, broadcast: bool) -> DataFrame:
    """Each event with what the KPIs need of its track and user (null for an unknown id).

    With `broadcast`, the events keep their partitioning by user, so the per-user aggregates
    need no further exchange.
    """
    side = F.broadcast if broadcast else (lambda frame: frame)
    ages = users.select("user_id", _age_group(F.col("user_age")).alias("ag"))
    return (
        events.join(side(songs), "track_id", "left")
        .join(side(ages), "user_id", "left")
        .select(
            F.to_date("listen_time").alias("date"),
            F.hour("listen_time").alias("hour"),
            "user_id",
            "track_id",
            "track_genre",
            "duration_ms",
            "track_name",
            "artists",
            "ag",
        )
    )


def _distinct_ids(events: DataFrame) -> int:
    """An estimate (HyperLogLog, 5%) of the larger of the batch's distinct tracks and users."""
    estimate = events.agg(
        F.approx_count_distinct("track_id", 0.05).alias("tracks"),
        F.approx_count_distinct("user_id", 0.05).alias("users"),
    ).first()
    return max(estimate["tracks"], estimate["users"]) if estimate else 0


def _age_group(age: Column) -> Column:
    """The index in `AGE_GROUPS` of an age (null stays null)."""
    index = sum((F.when(age >= bound, 1).otherwise(0) for bound in AGE_LOWER_BOUNDS), F.lit(0))
    return F.when(age.isNotNull(), index)


def _best(frame: DataFrame, keys: list[str]) -> DataFrame:
    """Per `keys`, the `key` with the most `n`, ties by the smaller key."""
    best = F.min(F.struct((-F.col("n")).alias("neg"), F.col("key"))).alias("best")
    return frame.groupBy(*keys).agg(best).select(*keys, F.col("best.key").alias("key"))


_SHAPE = {
    "k1": "string",
    "k2": "string",
    "name": "string",
    "artists": "string",
    "rank": "int",
    "a": "long",
    "b": "long",
    "c": "long",
    "ages": "array<long>",
}


def _out(frame: DataFrame, kind: str, **columns: str) -> DataFrame:
    """One result kind in the shared shape (kind, date, k1, k2, name, artists, rank, a, b, c, ages)."""
    date = F.col("date") if "date" in frame.columns else F.lit(None).cast("date")
    return frame.select(
        F.lit(kind).alias("kind"),
        date.alias("date"),
        *[
            (F.col(columns[name]) if name in columns else F.lit(None)).cast(type_).alias(name)
            for name, type_ in _SHAPE.items()
        ],
    )


def _results(joined: DataFrame) -> DataFrame:
    genred = joined.where(F.col("track_genre").isNotNull())
    by_genre_user = genred.groupBy("date", "track_genre", "user_id").agg(_count(), F.sum("duration_ms").alias("ms"))
    genres = by_genre_user.groupBy("date", "track_genre").agg(
        F.sum("n").alias("listens"), _count("listeners"), F.sum("ms").alias("ms")
    )
    # a track's name and artists are functions of its id: `max` carries them through the group
    by_song = genred.groupBy("date", "track_genre", "track_id").agg(
        _count(), F.max("track_name").alias("track_name"), F.max("artists").alias("artists")
    )
    song_order = Window.partitionBy("date", "track_genre").orderBy(F.desc("n"), F.asc("track_id"))
    top_songs = by_song.withColumn("rank", F.row_number().over(song_order)).where(F.col("rank") <= TOP_SONGS)

    by_hour_user = joined.groupBy("date", "hour", "user_id").agg(_count(), F.max("ag").alias("ag"))
    per_age = [F.sum(F.when(F.col("ag") == i, F.col("n"))) for i in range(len(AGE_GROUPS))]
    hours = by_hour_user.groupBy("date", "hour").agg(
        F.sum("n").alias("listens"), _count("listeners"), F.array(*per_age).alias("ages")
    )
    by_hour_track = joined.groupBy("date", "hour", "track_id").agg(_count(), F.max("artists").alias("artists"))
    tracks = by_hour_track.groupBy("date", "hour").agg(_count("tracks"))
    credits = by_hour_track.select("date", "hour", "n", F.explode(F.split("artists", ";")).alias("credit"))
    credited = credits.select("date", "hour", "n", F.trim("credit").alias("key")).where(F.col("key") != "")
    artists = _best(credited.groupBy("date", "hour", "key").agg(F.sum("n").alias("n")), ["date", "hour"])
    return _union(
        [
            _out(genres, "genre", k1="track_genre", a="listens", b="listeners", c="ms"),
            _out(
                top_songs,
                "song",
                k1="track_genre",
                k2="track_id",
                name="track_name",
                artists="artists",
                rank="rank",
                a="n",
            ),
            _out(hours, "hour", rank="hour", a="listens", b="listeners", ages="ages"),
            _out(tracks, "tracks", rank="hour", a="tracks"),
            _out(artists, "artist", rank="hour", k1="key"),
        ]
    )


def _counters(songs: DataFrame, users: DataFrame, track_ids: DataFrame, user_ids: DataFrame) -> DataFrame:
    """One row: the metadata rows that took part, and the batch's distinct ids (the job's own counters)."""
    counts = [
        songs.agg(_count("a")).select("a", F.lit(None).cast("long").alias("b")),
        users.agg(_count("b")).select(F.lit(None).cast("long").alias("a"), "b"),
        track_ids.agg(_count("c")).select(F.col("c").alias("a"), F.lit(None).cast("long").alias("b")),
        user_ids.agg(_count("d")).select(F.lit(None).cast("long").alias("a"), F.col("d").alias("b")),
    ]
    kinds = ["songs_taking_part", "users_taking_part", "batch_tracks", "batch_users"]
    return _union([_out(c, kind, a="a", b="b") for c, kind in zip(counts, kinds, strict=True)])


def _union(frames: list[DataFrame]) -> DataFrame:
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


def compute(
    spark: SparkSession,
    inputs: Inputs,
    metadata: Metadata,
    dates: Sequence[dt.date],
    version: int,
    computed_at: dt.datetime,
) -> Computed:
    """DayKpis for every date in `dates` (a date with no events gets empty KPIs)."""
    days = sorted(set(dates))
    rows: list[Row] = []
    plan = None
    if inputs.event_paths:
        plan = Plan.for_input(inputs.input_bytes, spark.sparkContext.defaultParallelism)
        spark.conf.set("spark.sql.shuffle.partitions", str(plan.partitions))
        # one partition: no broadcast (each is a job of its own) and no adaptive execution (it splits
        # the plan into a job per stage). Large: adaptive execution turns a join whose side proved
        # small at run time into a broadcast, and sizes the partitions after each exchange.
        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1" if plan.single else str(10 << 20))
        spark.conf.set("spark.sql.adaptive.enabled", str(not plan.single).lower())
        cached: list[DataFrame] = []

        def cache(frame: DataFrame) -> DataFrame:
            cached.append(frame.persist(StorageLevel.MEMORY_AND_DISK))
            return frame

        try:
            events = cache(_events(spark, inputs, days, plan))
            track_ids = events.select("track_id").distinct()
            user_ids = events.select("user_id").distinct()
            small = not plan.single and _distinct_ids(events) <= BROADCAST_IDS
            songs = cache(_taking_part(spark, metadata.songs, SONGS_SCHEMA, "track_id", track_ids, small))
            users = cache(_taking_part(spark, metadata.users, USERS_SCHEMA, "user_id", user_ids, small))
            joined = cache(_joined(events, songs, users, broadcast=small))
            rows = _union([_results(joined), _counters(songs, users, track_ids, user_ids)]).collect()
        finally:
            for frame in cached:
                frame.unpersist()
    per_day: dict[dt.date, _Day] = defaultdict(_Day)
    counters: dict[str, int] = {}
    for row in rows:
        if row["date"] is None:
            counters[row["kind"]] = int(row["a"] if row["a"] is not None else row["b"])
        else:
            per_day[row["date"]].add(row)
    taking_part = TakingPart(
        song_rows=counters.get("songs_taking_part", 0),
        user_rows=counters.get("users_taking_part", 0),
        distinct_tracks=counters.get("batch_tracks", 0),
        distinct_users=counters.get("batch_users", 0),
    )
    return Computed([per_day[d].assemble(d, version, computed_at) for d in days], taking_part, plan)


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

    def assemble(self, day: dt.date, version: int, computed_at: dt.datetime) -> DayKpis:
        songs: dict[str, list[SongRank]] = defaultdict(list)
        for r in self.rows["song"]:
            songs[r["k1"]].append(
                SongRank(
                    rank=r["rank"],
                    track_id=r["k2"],
                    track_name=r["name"] or "",
                    artists=r["artists"] or "",
                    listen_count=r["a"],
                )
            )
        genres = sorted(
            (
                GenreDay(
                    genre=r["k1"],
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
        artists = {r["rank"]: r["k1"] for r in self.rows["artist"]}
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
