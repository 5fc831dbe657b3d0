"""dynamo-writer: items/s written for 7 days of realistic results, and the write amplification.

Each day has between 20 and 114 genres (the public Spotify tracks set has 114), 3 top songs
per genre, 5 top genres and 24 hours: 4 + 3 items per genre plus 29 per day. The days are
written once (v1), then recomputed (v2, with top songs changing and genres appearing and
disappearing, as after late files and a metadata fix), then the v2 messages are replayed.

Side by side on the same table, in the same run: the same items through an unconditional
BatchWriteItem (the floor: what conditions cost) and through TransactWriteItems of 25
conditional puts (the primitive of the first writer, whose cost on the emulator grows with
the table).
"""

from __future__ import annotations

import datetime as dt
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from bench.common import main, median
from playcount.core.kpi_items import all_items
from playcount.core.kpis import DayKpis, GenreDay, GenreRank, HourStats, SongRank
from playcount.devstack.sandbox import sandbox
from playcount.writer import manifest
from playcount.writer.apply import Applied, apply
from playcount.writer.config import WriterOptions, dynamodb_client

FIRST_DAY = dt.date(2025, 6, 18)
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SYLLABLES = ("la", "mo", "ri", "ka", "zen", "tor", "vi", "sol", "neo", "bel", "dra", "quin", "ul", "pha")
_ser = TypeSerializer()


def _genre_names(rng: random.Random, n: int) -> list[str]:
    names: set[str] = set()
    while len(names) < n:
        names.add("-".join("".join(rng.choices(_SYLLABLES, k=rng.randint(2, 3))) for _ in range(rng.randint(1, 2))))
    return sorted(names)


class Catalogue:
    """Ten candidate tracks per genre: top 3 lists drawn from them overlap between versions."""

    def __init__(self, rng: random.Random, genres: list[str]) -> None:
        self.rng = rng
        self.tracks = {g: ["".join(rng.choices(_ALPHABET, k=22)) for _ in range(10)] for g in genres}
        self.genres = genres

    def day(self, day: dt.date, version: int, genres: list[str], previous: DayKpis | None) -> DayKpis:
        rng = self.rng
        before = {g.genre: g for g in previous.genres} if previous else {}
        out = []
        for g in genres:
            listens = rng.randint(50, 20_000)
            old = before.get(g)
            # most top 3s stay put between versions; the others are drawn again
            keep = old is not None and rng.random() < 0.7
            top = [s.track_id for s in old.top_songs] if old and keep else rng.sample(self.tracks[g], 3)
            users = max(1, listens // rng.randint(2, 6))
            total = listens * rng.randint(150_000, 240_000)
            out.append(
                GenreDay(
                    genre=g,
                    listen_count=listens,
                    unique_listeners=users,
                    total_listening_time_ms=total,
                    avg_listening_time_per_user_ms=round(total / users, 6),
                    top_songs=[
                        SongRank(
                            rank=r,
                            track_id=t,
                            track_name=" ".join(rng.choices(_SYLLABLES, k=3)).title(),
                            artists=";".join(rng.choices(_SYLLABLES, k=rng.randint(1, 3))).title(),
                            listen_count=max(1, listens // (r + 3)),
                        )
                        for r, t in enumerate(top, start=1)
                    ],
                )
            )
        ranked = sorted(out, key=lambda x: (-x.listen_count, x.genre))[:5]
        return DayKpis(
            date=day,
            version=version,
            computed_at=dt.datetime.now(dt.UTC),
            events=sum(x.listen_count for x in out),
            genres=out,
            top_genres=[GenreRank(rank=i, genre=x.genre, listen_count=x.listen_count) for i, x in enumerate(ranked, 1)],
            hours=[
                HourStats(
                    hour=h,
                    listen_count=rng.randint(100, 5000),
                    unique_listeners=rng.randint(50, 1000),
                    avg_listens_per_user=round(rng.uniform(1, 5), 6),
                    track_diversity_index=round(rng.random(), 6),
                    top_artist=rng.choice(_SYLLABLES).title(),
                    most_engaged_age_group=rng.choice(["18-24", "25-34", "35-44"]),
                )
                for h in range(24)
            ],
        )


def _results(quick: bool, seed: int = 7) -> tuple[list[DayKpis], list[DayKpis]]:
    """Version 1 and version 2 of each day."""
    rng = random.Random(seed)
    sizes = [20, 30] if quick else [20, 114, 45, 80, 33, 67, 101]
    catalogue = Catalogue(rng, _genre_names(rng, 130))  # days draw from more genres than any one has
    first, second = [], []
    for i, n in enumerate(sizes):
        day = FIRST_DAY + dt.timedelta(days=i)
        genres = rng.sample(catalogue.genres, n)
        v1 = catalogue.day(day, 1, genres, None)
        # a metadata fix moves about 5% of the genres out and others in
        churn = max(1, n // 20)
        kept = rng.sample(genres, n - churn)
        fresh = rng.sample([g for g in catalogue.genres if g not in genres], churn)
        first.append(v1)
        second.append(catalogue.day(day, 2, kept + fresh, v1))
    return first, second


def _apply_all(ddb: Any, table: str, results: list[DayKpis], pool: ThreadPoolExecutor) -> tuple[list[Applied], float]:
    started = time.perf_counter()
    applied = [apply(ddb, table, k, options=WriterOptions(), pool=pool) for k in results]
    return applied, time.perf_counter() - started


def _wire(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in item.items()}


def _batch_floor(ddb: Any, table: str, kpis: DayKpis, pool: ThreadPoolExecutor) -> float:
    """items/s of unconditional BatchWriteItem (25 per request, 4 requests in flight)."""
    items = [_wire(i) for i in all_items(kpis)]
    chunks = [items[i : i + 25] for i in range(0, len(items), 25)]
    started = time.perf_counter()
    for _ in pool.map(
        lambda c: ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": i}} for i in c]}), chunks
    ):
        pass
    return len(items) / (time.perf_counter() - started)


def _transact(ddb: Any, table: str, kpis: DayKpis, n: int = 25) -> float:
    """items/s of one TransactWriteItems of `n` version-conditioned puts."""
    items = [_wire(i) for i in all_items(kpis)][:n]
    started = time.perf_counter()
    ddb.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": table,
                    "Item": i,
                    "ConditionExpression": "attribute_not_exists(pk) OR version <= :v",
                    "ExpressionAttributeValues": {":v": {"N": str(kpis.version)}},
                }
            }
            for i in items
        ]
    )
    return len(items) / (time.perf_counter() - started)


def run(quick: bool) -> dict[str, Any]:
    first, second = _results(quick)
    with sandbox() as settings:
        ddb = dynamodb_client(settings)
        table = settings.dynamodb_table_name
        with ThreadPoolExecutor(WriterOptions().parallelism, thread_name_prefix="writer") as pool:
            v1, v1_s = _apply_all(ddb, table, first, pool)
            v2, v2_s = _apply_all(ddb, table, second, pool)
            replay, _ = _apply_all(ddb, table, second, pool)
            # references on the same (now full) table, with a day of the bench's own results
            probe = second[0].model_copy(update={"date": FIRST_DAY - dt.timedelta(days=1)})
            floor = _batch_floor(ddb, table, probe, pool)
            transact = _transact(ddb, table, probe)
        table_items = ddb.describe_table(TableName=table)["Table"].get("ItemCount", 0)
    written = sum(a.written for a in v1 + v2)
    requests = sum(a.requests for a in v1 + v2)
    writer_rate = written / (v1_s + v2_s)
    genres = [len(k.genres) for k in first]
    biggest = max(first, key=lambda k: len(k.genres))
    return {
        "days": len(first),
        "genres_per_day_min": min(genres),
        "genres_per_day_max": max(genres),
        "items_per_result_median": median([float(a.written) for a in v1]),
        "first_write_items_per_s": round(sum(a.written for a in v1) / v1_s),
        "first_write_s_per_day_median": round(median([a.seconds for a in v1]), 3),
        "rewrite_items_per_s": round(sum(a.written for a in v2) / v2_s),
        "rewrite_s_per_day_median": round(median([a.seconds for a in v2]), 3),
        "rewrite_deleted_items": sum(a.deleted for a in v2),
        "replay_requests_per_result": median([float(a.requests) for a in replay]),
        "replay_ms_median": round(1000 * median([a.seconds for a in replay]), 1),
        "writes_per_item": round((written + sum(a.deleted for a in v2)) / written, 3),
        "requests_per_result_median": median([float(a.requests) for a in v1 + v2]),
        "requests_per_item_written": round(requests / written, 3),
        "partitions_queried": sum(a.queried for a in v1 + v2),
        "writer_items_per_s": round(writer_rate),
        "batch_floor_items_per_s": round(floor),
        "transact25_items_per_s": round(transact, 1),
        "writer_vs_batch_floor": round(writer_rate / floor, 3),
        "writer_vs_transact": round(writer_rate / transact, 2),
        "manifest_bytes_largest_day": len(manifest.encode((i["pk"], i["sk"]) for i in all_items(biggest)) or b""),
        "table_items": table_items,
    }


if __name__ == "__main__":
    main("writer", run)
