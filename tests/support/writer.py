"""Results to apply, and an independent view of the table, for the writer tests.

- `make_day`: a `DayKpis` from a compact description (genres and the track ids of their top songs);
- `expected`: the items a result must leave, spelled out with literal key formats (the seed's
  layout), not through `playcount.core.keys`, so a wrong key schema fails;
- `kpi_items_of`: every KPI item the table holds for a date, found by a full Scan (not through
  the writer's manifest or queries), so an orphan anywhere in the table is seen.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from playcount.core.kpis import DayKpis, GenreDay, GenreRank, HourStats, SongRank

DAY = dt.date(2025, 6, 24)
_de = TypeDeserializer()

# genre -> (listen_count, [track ids of its top songs, rank order])
Shape = dict[str, tuple[int, list[str]]]


def make_day(day: dt.date, version: int, shape: Shape, hours: int = 24) -> DayKpis:
    genres = [
        GenreDay(
            genre=g,
            listen_count=n,
            unique_listeners=max(1, n // 3),
            total_listening_time_ms=n * 181_000 + version,
            avg_listening_time_per_user_ms=round(n * 181_000 / max(1, n // 3), 6) + version / 1000,
            top_songs=[
                SongRank(rank=r, track_id=t, track_name=f"Song {t} v{version}", artists="Ana;Bo", listen_count=n - r)
                for r, t in enumerate(tracks, start=1)
            ],
        )
        for g, (n, tracks) in sorted(shape.items())
    ]
    ranked = sorted(genres, key=lambda g: (-g.listen_count, g.genre))[:5]
    return DayKpis(
        date=day,
        version=version,
        computed_at=dt.datetime(2025, 6, 25, 1, 0, tzinfo=dt.UTC) + dt.timedelta(seconds=version),
        events=sum(n for n, _ in shape.values()),
        genres=genres,
        top_genres=[GenreRank(rank=i, genre=g.genre, listen_count=g.listen_count) for i, g in enumerate(ranked, 1)],
        hours=[
            HourStats(
                hour=h,
                listen_count=10 + h + version,
                unique_listeners=5 + h,
                avg_listens_per_user=round((10 + h + version) / (5 + h), 6),
                track_diversity_index=0.5,
                top_artist="Ana" if h % 2 else None,
                most_engaged_age_group="25-34",
            )
            for h in range(hours)
        ],
    )


def versions(day: dt.date, n: int, seed: int) -> list[DayKpis]:
    """n results of one date whose genres and songs all differ, so any mix-up shows."""
    rng = random.Random(seed)
    names = ["rock", "pop", "jazz", "folk", "metal", "soul", "punk", "disco"]
    out = []
    for v in range(1, n + 1):
        genres = rng.sample(names, rng.randint(1, 5))
        out.append(
            make_day(
                day,
                v * 10,
                {g: (rng.randint(1, 500), [f"{g}{v}t{i}" for i in range(rng.randint(1, 3))]) for g in genres},
            )
        )
    return out


def expected(kpis: DayKpis) -> dict[tuple[str, str], dict[str, Any]]:
    """The seed's item layout for `kpis`, spelled out literally."""
    d = kpis.date.isoformat()
    stamp = {"version": Decimal(kpis.version), "computed_at": kpis.computed_at.isoformat()}
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for g in kpis.genres:
        pk = f"GENRE#{g.genre}#DATE#{d}"
        for name in ("listen_count", "unique_listeners", "total_listening_time_ms", "avg_listening_time_per_user_ms"):
            out[(pk, f"METRIC#{name}")] = {"value": Decimal(str(getattr(g, name))), **stamp}
        for s in g.top_songs:
            out[(pk, f"SONG#{s.rank}#{s.track_id}")] = {
                "track_name": s.track_name,
                "artists": s.artists,
                "listen_count": Decimal(s.listen_count),
                **stamp,
            }
    for r in kpis.top_genres:
        out[(f"DATE#{d}", f"GENRE_RANK#{r.rank}")] = {
            "genre": r.genre,
            "listen_count": Decimal(r.listen_count),
            **stamp,
        }
    for h in kpis.hours:
        out[(f"DATE#{d}", f"HOUR#{h.hour:02d}")] = {"listen_count": Decimal(h.listen_count), **stamp}
    order = sorted(kpis.genres, key=lambda g: (-g.listen_count, g.genre))
    for rank, g in enumerate(order, start=1):
        out[(f"TREND#{g.genre}", f"DATE#{d}")] = {
            "listen_count": Decimal(g.listen_count),
            "unique_listeners": Decimal(g.unique_listeners),
            "rank": Decimal(rank),
            "share": Decimal(str(round(g.listen_count / kpis.events, 6))),
            **stamp,
        }
    if order:  # a few genres: one chunk
        out[(f"DATE#{d}", "RANKING#00000")] = {
            "rank_from": Decimal(1),
            "total": Decimal(len(order)),
            "listens": Decimal(kpis.events),
            "genres": [
                {
                    "genre": g.genre,
                    "listen_count": Decimal(g.listen_count),
                    "unique_listeners": Decimal(g.unique_listeners),
                }
                for g in order
            ],
            **stamp,
        }
    return out


def scan(ddb: Any, table: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Every item of the table, plain Python values (Decimal numbers)."""
    items: dict[tuple[str, str], dict[str, Any]] = {}
    start = None
    while True:
        kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = ddb.scan(**kwargs)
        for raw in page.get("Items", []):
            item = {k: _de.deserialize(v) for k, v in raw.items()}
            items[(item["pk"], item["sk"])] = item
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def kpi_items_of(ddb: Any, table: str, day: dt.date) -> dict[tuple[str, str], dict[str, Any]]:
    """The KPI items the table holds for `day` (HEAD and other bookkeeping left out)."""
    d = day.isoformat()
    return {
        key: item
        for key, item in scan(ddb, table).items()
        if (key[0].startswith("GENRE#") and key[0].endswith(f"#DATE#{d}"))
        or (key[0].startswith("TREND#") and key[1] == f"DATE#{d}")
        or (key[0] == f"DATE#{d}" and key[1].startswith(("GENRE_RANK#", "HOUR#", "RANKING#")))
    }


def assert_holds_exactly(ddb: Any, table: str, kpis: DayKpis) -> None:
    """The table's KPI items of the date are exactly those of `kpis`, with its values."""
    got = kpi_items_of(ddb, table, kpis.date)
    want = expected(kpis)
    assert set(got) == set(want), (
        f"missing {sorted(set(want) - set(got))[:5]}, unexpected {sorted(set(got) - set(want))[:5]}"
    )
    for key, fields in want.items():
        for name, value in fields.items():
            assert got[key][name] == value, (key, name, got[key][name], value)


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


class Throttle:
    """Fault injection: DynamoDB answers chosen requests with a throttling error.

    The emulator never throttles, so a botocore `before-send` hook answers in its place, before
    the request leaves the client: botocore parses that answer exactly like one from the
    service, and its own retries and the writer's rounds see a real ClientError. `decide(n)`
    gets the running number of matching requests and says whether to refuse this one.
    """

    def __init__(
        self,
        decide: Callable[[int], bool],
        operations: tuple[str, ...] = ("PutItem", "DeleteItem"),
        code: str = "ProvisionedThroughputExceededException",
    ) -> None:
        self.decide = decide
        self.operations = operations
        self.code = code
        self.seen = 0
        self.refused = 0
        self._lock = threading.Lock()

    def install(self, client: Any) -> Any:
        for op in self.operations:
            client.meta.events.register(f"before-send.dynamodb.{op}", self._before_send)
        return client

    def _before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        with self._lock:
            self.seen += 1
            refuse = self.decide(self.seen)
            self.refused += refuse
        if not refuse:
            return None
        body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{self.code}", "message": "injected"})
        headers = {"x-amzn-RequestId": "injected", "Content-Type": "application/x-amz-json-1.0"}
        return AWSResponse(request.url, 400, headers, _Body(body.encode()))


def client_without_retries(settings: Any) -> Any:
    """A DynamoDB client whose botocore layer never retries, so the writer's own layer is seen."""
    return boto3.client(
        "dynamodb",
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, max_pool_connections=32),
    )
