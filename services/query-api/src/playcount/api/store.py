"""Async reads of the KPI table through the shared key schema (strongly consistent queries).

Consistent reads make the cache the only source of staleness: a version written at T is what
any query started after T returns, so it is served within API_CACHE_SECONDS of T.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer

from playcount.api.telemetry import DYNAMODB
from playcount.core import keys, ledger
from playcount.core.kpi_items import parse_genre_day, parse_hours, parse_ranking, parse_top_genres, parse_trend
from playcount.core.kpis import GenreDay, GenreRank, HourStats, RankedGenre, TrendDay

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

_de = TypeDeserializer()


@dataclass(frozen=True)
class Ranking:
    """Part of a day's full ranking, from its first chunk read on."""

    genres: list[RankedGenre]
    total: int  # genres of the day
    listens: int  # of the day
    version: int
    computed_at: str


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _de.deserialize(v) for k, v in item.items()}


def _versions(items: list[dict[str, Any]]) -> set[int]:
    return {int(i.get("version", 0)) for i in items}


class KpiStore:
    def __init__(self, ddb: DynamoDBClient, table: str) -> None:
        self.ddb = ddb
        self.table = table

    async def _query(
        self, pk: str, sk_prefix: str | None = None, sk_between: tuple[str, str] | None = None
    ) -> list[dict[str, Any]]:
        expression = "pk = :pk"
        values: dict[str, Any] = {":pk": {"S": pk}}
        if sk_prefix:
            expression += " AND begins_with(sk, :sk)"
            values[":sk"] = {"S": sk_prefix}
        elif sk_between:
            expression += " AND sk BETWEEN :first AND :last"
            values[":first"], values[":last"] = {"S": sk_between[0]}, {"S": sk_between[1]}
        items: list[dict[str, Any]] = []
        start = None
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self.table,
                "KeyConditionExpression": expression,
                "ExpressionAttributeValues": values,
                "ConsistentRead": True,
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            with DYNAMODB.labels("query").time():
                page = await self.ddb.query(**kwargs)
            items += [_plain(i) for i in page.get("Items", [])]
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    # a date's reads return the versions their items carry too: `consistent.DateVersions.whole`
    # serves them only when they are one whole version
    async def genre_day(self, genre: str, day: dt.date) -> tuple[tuple[GenreDay, int, str] | None, set[int]]:
        items = await self._query(keys.genre_day_pk(genre, day))
        return parse_genre_day(genre, items), _versions(items)

    async def top_genres(self, day: dt.date) -> tuple[list[GenreRank], set[int]]:
        items = await self._query(keys.day_pk(day), keys.GENRE_RANK_PREFIX)
        return parse_top_genres(items), _versions(items)

    async def hours(self, day: dt.date) -> tuple[list[HourStats], set[int]]:
        items = await self._query(keys.day_pk(day), keys.HOUR_PREFIX)
        return parse_hours(items), _versions(items)

    async def ranking(self, day: dt.date, first_chunk: int, last_chunk: int) -> tuple[Ranking | None, set[int]]:
        """The ranked genres of chunks `first_chunk..last_chunk` (None without any), and the items' versions."""
        between = (keys.ranking_sk(first_chunk), keys.ranking_sk(min(last_chunk, keys.RANKING_MAX_CHUNK)))
        items = await self._query(keys.day_pk(day), sk_between=between)
        if not items:
            return None, set()
        head = items[0]
        ranking = Ranking(
            genres=parse_ranking(items),
            total=int(head["total"]),
            listens=int(head["listens"]),
            version=int(head["version"]),
            computed_at=str(head["computed_at"]),
        )
        return ranking, _versions(items)

    async def trend(self, genre: str, first: dt.date, last: dt.date) -> list[TrendDay]:
        """The genre's trend items from `first` to `last` (one query, a page per 1 MB)."""
        return parse_trend(
            await self._query(keys.trend_pk(genre), sk_between=(keys.date_sk(first), keys.date_sk(last)))
        )

    async def days(self, first: dt.date | None = None, last: dt.date | None = None) -> list[dict[str, Any]]:
        """The catalogue's entries, from `first` to `last` when given."""
        between = (keys.date_sk(first or dt.date.min), keys.date_sk(last or dt.date.max))
        return await self._query(keys.CATALOG_DAYS_PK, sk_between=between)

    async def ping(self) -> None:
        await self.ddb.describe_table(TableName=self.table)

    async def counters_and_freshness(self) -> tuple[dict[str, int], dict[str, Any] | None]:
        """The counter totals (the sum of their shards) and the last freshness, from one query."""
        items = await self._query(keys.COUNTERS_PK)
        freshness = next((i for i in items if i["sk"] == keys.FRESHNESS_SK), None)
        return ledger.sum_counters(items), freshness
