"""The KPI job: exact daily and hourly KPIs from all validated events of the given dates.

One Spark action per batch:

1. read the dates' events;
2. take part of the metadata: only the catalog rows whose id the batch's events reference (a
   left semi-join of each catalog scan with the batch's distinct ids), the newest segment's
   row per id (`core.snapshots`). Nothing the size of the catalog is encoded, collected or
   broadcast: the catalog is scanned where it lies, against the batch's ids;
3. code those rows for this batch: each track, genre, artist and user becomes its rank among
   the batch's values (code point order), so "most listens, ties by the smaller name" is
   exactly "ties by the smaller code", and the heavy part of the job hashes and compares
   integers only. A batch in one partition uses each name as its own code instead (it orders
   the same; the ranks' windows and joins were a third of its stages);
4. map events to codes, de-duplicate them on (user, track, listen_time) and cache them (an
   unknown id keeps its raw id beside a null code: its events count in the hourly figures and
   in no genre);
5. aggregate per (date, genre, user), (date, genre, track), (date, hour, user),
   (date, hour, track) (then per artist); unique counts are two-level aggregates. Top-N are a
   window (songs) or a `min` over (-listens, code) (artists, age groups);
6. turn the few winning codes back into names by joining the small results with the batch's
   codes (in one partition the codes are the names: no join), and collect: a few rows per
   (date, genre) and per (date, hour). Events never reach the driver, so the same job runs
   unchanged on a cluster.

Two layouts (`Plan`): a batch whose events fit in one task runs as one partition throughout,
so it is one job of three stages with no broadcast; a larger batch is hash-partitioned by user (the per-user
aggregates reuse that partitioning) into partitions sized from its input, and its coded
metadata is broadcast when the catalog is small enough to bound it, or joined by shuffle.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
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
    ranked,
)
from playcount.core.snapshots import SEQ

EVENTS_SCHEMA = "user_id string, track_id string, listen_time timestamp"
SONGS_SCHEMA = f"track_id string, track_name string, artists string, track_genre string, duration_ms long, {SEQ} long"
USERS_SCHEMA = f"user_id string, user_age long, {SEQ} long"
# a shuffle partition per this many bytes of input Parquet (about 1.3M events), at least one per core
BYTES_PER_PARTITION = 16 << 20
MAX_PARTITIONS = 200
# a batch up to this size of event Parquet (about 1.3M events) runs as one partition
SMALL_BATCH_BYTES = 16 << 20
# a larger batch broadcasts its coded metadata while the catalog has at most this many rows per
# kind (so what is broadcast, at most the batch's ids, is bounded); beyond, it joins by shuffle
BROADCAST_ROWS = 1_000_000
# a catalog kind above this many rows is filtered where it is read, against the batch's ids broadcast
SCAN_IN_PLACE_ROWS = 100_000


@dataclass(frozen=True)
class Inputs:
    """The event partition directories (or URLs) to read, and their total size."""

    event_paths: Sequence[str]
    input_bytes: int = 0


@dataclass(frozen=True)
class Metadata:
    """The catalog's segment files (or URLs) per kind, oldest first, and its rows per kind."""

    songs: Sequence[str] = ()
    users: Sequence[str] = ()
    song_rows: int = 0
    user_rows: int = 0


@dataclass(frozen=True)
class Plan:
    """How a batch is laid out: one partition throughout, or hash-partitioned by user."""

    partitions: int
    single: bool
    broadcast: bool = False

    @property
    def layout(self) -> str:
        """`single`, `broadcast` or `shuffle`: for logs and tests."""
        return "single" if self.single else "broadcast" if self.broadcast else "shuffle"

    @classmethod
    def for_batch(cls, input_bytes: int, parallelism: int, metadata: Metadata) -> Plan:
        if input_bytes <= SMALL_BATCH_BYTES:
            return cls(partitions=1, single=True)
        small = max(metadata.song_rows, metadata.user_rows) <= BROADCAST_ROWS
        return cls(partitions=shuffle_partitions(input_bytes, parallelism), single=False, broadcast=small)


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


@dataclass(frozen=True)
class _Codes:
    """The batch's metadata rows with their per-batch codes (no name tables where codes are names)."""

    tracks: DataFrame  # track_id, tidx, gidx, duration_ms, track_name, artists
    genres: DataFrame | None  # gidx, track_genre
    artists: DataFrame | None  # aidx, artist
    credits: DataFrame  # tidx, aidx (one row per credited artist, as the `;` list has them)
    users: DataFrame  # user_id, uidx, ag


def shuffle_partitions(input_bytes: int, parallelism: int) -> int:
    """Enough partitions to use every core, and more only when the input is large."""
    by_size = math.ceil(input_bytes / BYTES_PER_PARTITION)
    return max(1, min(MAX_PARTITIONS, max(parallelism, by_size)))


def _count(name: str = "n") -> Column:
    return F.count(F.lit(1)).alias(name)


def _distinct_ids(raw: DataFrame, keep: Callable[[DataFrame], DataFrame]) -> tuple[DataFrame, DataFrame]:
    """The batch's distinct track ids and user ids, from one pass over its events."""
    both = F.array(
        F.struct(F.lit(0).alias("user"), F.col("track_id").alias("id")),
        F.struct(F.lit(1).alias("user"), F.col("user_id").alias("id")),
    )
    ids = keep(raw.select(F.explode(both).alias("x")).select("x.*").distinct())
    user = F.col("user") == 1
    return ids.where(~user).select(F.col("id").alias("track_id")), ids.where(user).select(F.col("id").alias("user_id"))


def _taking_part(
    spark: SparkSession, paths: Sequence[str], schema: str, id_column: str, ids: DataFrame, catalog_rows: int
) -> DataFrame:
    """The current catalog row of each id in `ids` only: a semi-join of the scan, newest segment first.

    The batch's ids are the hash table: the scan streams past it and keeps its matches, so no
    task ever holds the catalog. A catalog of more than `SCAN_IN_PLACE_ROWS` rows is filtered
    where it is read, against the batch's ids broadcast (one small job); a smaller one is
    exchanged to meet them, which costs less than that job.
    """
    if not paths:
        return spark.createDataFrame([], schema).drop(SEQ)
    scan = spark.read.schema(schema).parquet(*paths)
    table = F.broadcast(ids) if catalog_rows > SCAN_IN_PLACE_ROWS else ids.hint("shuffle_hash")
    rows = scan.join(table, id_column, "left_semi")
    if len(paths) > 1:  # an id corrected by a later segment: its newest row wins
        columns = [c for c in scan.columns if c not in (id_column, SEQ)]
        newest = F.max(F.struct(SEQ, *columns)).alias("row")
        rows = rows.groupBy(id_column).agg(newest).select(id_column, *[f"row.{c}" for c in columns])
    return rows.drop(SEQ)


def _ranked(values: DataFrame, column: str, code: str) -> DataFrame:
    """Each distinct `column` value with `code`, its rank from 0 in code point order.

    A window over all rows: one partition, which holds at most the batch's distinct values.
    """
    distinct = values.select(column).where(F.col(column).isNotNull()).distinct()
    return distinct.select(column, (F.row_number().over(Window.orderBy(column)) - 1).alias(code))


def _credits(tracks: DataFrame) -> DataFrame:
    """(tidx, artist): one row per credited artist of each track, as the `;` list has them."""
    credited = tracks.select("tidx", F.explode(F.split("artists", ";")).alias("credit"))
    return credited.select("tidx", F.trim("credit").alias("artist")).where(F.col("artist") != "")


def _ages(users: DataFrame) -> DataFrame:
    return users.select("user_id", _age_group(F.col("user_age")).alias("ag"))


def _codes(songs: DataFrame, users: DataFrame, keep: Callable[[DataFrame], DataFrame]) -> _Codes:
    genres = keep(_ranked(songs, "track_genre", "gidx"))
    tracks = keep(
        songs.join(_ranked(songs, "track_id", "tidx"), "track_id")
        .join(genres, "track_genre", "left")
        .select("track_id", "tidx", "gidx", "duration_ms", "track_name", "artists")
    )
    credited = _credits(tracks)
    artists = keep(_ranked(credited, "artist", "aidx"))
    credits = keep(credited.join(artists, "artist").select("tidx", "aidx"))
    coded_users = keep(_ages(users).join(_ranked(users, "user_id", "uidx"), "user_id"))
    return _Codes(tracks, genres.select("gidx", "track_genre"), artists.select("aidx", "artist"), credits, coded_users)


def _names_as_codes(songs: DataFrame, users: DataFrame) -> _Codes:
    """The single layout's codes: every value is its own code.

    A name orders exactly like its rank among the batch's values (code point order), so the
    tie-breaks are the same. Ranks pay off where rows are hashed and compared across many tasks;
    in one partition they only cost windows and joins (four of the job's twelve stages), and
    naming the winners needs no join either (four more of the remaining eight).
    """
    tracks = songs.select(
        "track_id",
        F.col("track_id").alias("tidx"),
        F.col("track_genre").alias("gidx"),
        "duration_ms",
        "track_name",
        "artists",
    )
    credits = _credits(tracks).select("tidx", F.col("artist").alias("aidx"))
    coded_users = _ages(users).select("user_id", F.col("user_id").alias("uidx"), "ag")
    return _Codes(tracks, None, None, credits, coded_users)


def _age_group(age: Column) -> Column:
    """The index in `AGE_GROUPS` of an age (null stays null)."""
    index = sum((F.when(age >= bound, 1).otherwise(0) for bound in AGE_LOWER_BOUNDS), F.lit(0))
    return F.when(age.isNotNull(), index)


def _events(raw: DataFrame, codes: _Codes, plan: Plan) -> DataFrame:
    """The distinct events as codes (a raw id stands in beside a null code), laid out by the plan."""
    side: Callable[[DataFrame], DataFrame] = F.broadcast if plan.broadcast else (lambda frame: frame)
    user, track = F.col("uidx"), F.col("tidx")
    coded = (
        raw.join(side(codes.tracks.select("track_id", "tidx", "gidx", "duration_ms")), "track_id", "left")
        .join(side(codes.users), "user_id", "left")
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
    )
    if not plan.single:
        coded = coded.repartition(plan.partitions, "uidx", "ux")
    return coded.dropDuplicates(["uidx", "ux", "tidx", "tx", "listen_time"]).select(
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
    """One result kind in the shared shape (kind, date, k1, k2, name, artists, rank, a, b, c, ages).

    One `selectExpr` of SQL text: a JVM round trip for the whole projection, not several per column.
    """
    date = "date" if "date" in frame.columns else "NULL"
    shape = [f"CAST({columns.get(name, 'NULL')} AS {type_}) AS {name}" for name, type_ in _SHAPE.items()]
    return frame.selectExpr(f"'{kind}' AS kind", f"CAST({date} AS date) AS date", *shape)


def _named(frame: DataFrame, names: DataFrame | None, code: str, name: str) -> DataFrame:
    """`frame` with the `name` of each `code`: joined from the batch's codes, or the code itself."""
    return frame.withColumn(name, F.col(code)) if names is None else frame.join(names, code)


def _results(events: DataFrame, codes: _Codes, plan: Plan) -> DataFrame:
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
    # the day's listeners: distinct over the day, never a sum over its hours or genres
    day = by_hour_user.groupBy("date", "uidx", "ux").agg(F.sum("n").alias("n")).groupBy("date").agg(_count("listeners"))
    by_hour_track = events.groupBy("date", "hour", "tidx", "tx").agg(_count())
    # summing `n` too keeps this aggregate identical to the artists' one, so they share its exchange
    tracks = by_hour_track.groupBy("date", "hour").agg(_count("tracks"), F.sum("n").alias("listens"))
    credits = codes.credits.withColumnRenamed("tidx", "credit_tidx")
    side: Callable[[DataFrame], DataFrame] = F.broadcast if plan.broadcast else (lambda frame: frame)
    tidx, credit_tidx = by_hour_track["tidx"], credits["credit_tidx"]
    # across partitions, a null-safe key infers no `tidx IS NOT NULL` below the aggregate (which
    # would split its exchange); in one partition there is no exchange, and `=` needs none either
    credited = by_hour_track.join(side(credits), tidx == credit_tidx if plan.single else tidx.eqNullSafe(credit_tidx))
    artists = _best(
        credited.groupBy("date", "hour", F.col("aidx").alias("key")).agg(F.sum("n").alias("n")), ["date", "hour"]
    ).withColumnRenamed("key", "aidx")
    # the winners' names: the small results join the batch's codes
    songs = _named(top_songs, codes.genres, "gidx", "track_genre").join(
        codes.tracks.select("tidx", "track_id", "track_name", "artists"), "tidx"
    )
    return _union(
        [
            _out(
                _named(genres, codes.genres, "gidx", "track_genre"),
                "genre",
                k1="track_genre",
                a="listens",
                b="listeners",
                c="ms",
            ),
            _out(
                songs,
                "song",
                k1="track_genre",
                k2="track_id",
                name="track_name",
                artists="artists",
                rank="rank",
                a="n",
            ),
            _out(hours, "hour", rank="hour", a="listens", b="listeners", ages="ages"),
            _out(day, "day", b="listeners"),
            _out(tracks, "tracks", rank="hour", a="tracks"),
            _out(_named(artists, codes.artists, "aidx", "artist"), "artist", rank="hour", k1="artist"),
        ]
    )


def _counters(songs: DataFrame, users: DataFrame, track_ids: DataFrame, user_ids: DataFrame) -> DataFrame:
    """One row per counter: the metadata rows that took part, and the batch's distinct ids."""
    counts = [
        (songs, "songs_taking_part"),
        (users, "users_taking_part"),
        (track_ids, "batch_tracks"),
        (user_ids, "batch_users"),
    ]
    return _union([_out(frame.agg(_count("a")), kind, a="a") for frame, kind in counts])


def _union(frames: list[DataFrame]) -> DataFrame:
    """Frames of `_out`'s one shape, by position."""
    out = frames[0]
    for frame in frames[1:]:
        out = out.union(frame)
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
        plan = Plan.for_batch(inputs.input_bytes, spark.sparkContext.defaultParallelism, metadata)
        spark.conf.set("spark.sql.shuffle.partitions", str(plan.partitions))
        # broadcasts are the plan's decision (`Plan.broadcast`), never Spark's estimate: in one
        # partition each would be a job of its own, and larger batches are sized by the catalog
        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
        cached: list[DataFrame] = []

        def keep(frame: DataFrame) -> DataFrame:
            cached.append(frame.persist(StorageLevel.MEMORY_AND_DISK))
            return frame

        try:
            raw = spark.read.schema(EVENTS_SCHEMA).parquet(*inputs.event_paths)
            raw = raw.where(F.to_date("listen_time").isin(list(days)))
            if plan.single:
                raw = keep(raw.coalesce(1))
            track_ids, user_ids = _distinct_ids(raw, keep)
            songs = keep(_taking_part(spark, metadata.songs, SONGS_SCHEMA, "track_id", track_ids, metadata.song_rows))
            users = keep(_taking_part(spark, metadata.users, USERS_SCHEMA, "user_id", user_ids, metadata.user_rows))
            codes = _names_as_codes(songs, users) if plan.single else _codes(songs, users, keep)
            events = keep(_events(raw, codes, plan))
            rows = _union([_results(events, codes, plan), _counters(songs, users, track_ids, user_ids)]).collect()
        finally:
            for frame in cached:
                frame.unpersist()
    per_day: dict[dt.date, _Day] = defaultdict(_Day)
    counters: dict[str, int] = {}
    for row in rows:
        if row["date"] is None:
            counters[row["kind"]] = int(row["a"])
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
        top = ranked(genres)[:TOP_GENRES]
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
            unique_listeners=sum(r["b"] for r in self.rows["day"]),
            genres=genres,
            top_genres=[GenreRank(rank=i + 1, genre=g.genre, listen_count=g.listen_count) for i, g in enumerate(top)],
            hours=hours,
        )
