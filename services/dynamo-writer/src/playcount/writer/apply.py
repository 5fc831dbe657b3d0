"""Apply one day's KPIs to the table: complete replacement, idempotent, never back in time.

Under the date's lease:
1. read the date's HEAD; a stored version above ours means we are stale: stop;
2. read the items stored for the date (its day partition and every genre partition old or new);
3. in transactions of up to 100 actions, put every item of the result and delete every stored
   item the result no longer contains; each action is conditioned on the stored item's
   version being <= ours (puts) or < ours (deletes);
4. move HEAD and the catalogue entry to our version.
The same result applied twice writes the same items and deletes nothing.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from playcount.core import keys
from playcount.core.errors import StaleResult, TransientError
from playcount.core.kpi_items import Item, all_items
from playcount.core.kpis import DayKpis
from playcount.writer.lock import date_lease

TRANSACTION_LIMIT = 100
_ser = TypeSerializer()
_de = TypeDeserializer()


@dataclass(frozen=True)
class Applied:
    date: dt.date
    version: int
    written: int
    deleted: int
    requests: int


def _wire(item: Item) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in item.items()}


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def read_head(ddb: Any, table: str, day: dt.date) -> dict[str, Any] | None:
    raw = ddb.get_item(TableName=table, Key=_key(keys.day_pk(day), keys.HEAD_SK), ConsistentRead=True).get("Item")
    return {k: _de.deserialize(v) for k, v in raw.items()} if raw else None


def _query_keys(ddb: Any, table: str, pk: str) -> list[tuple[str, str]]:
    out, start = [], None
    while True:
        kwargs: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ProjectionExpression": "pk, sk",
            "ConsistentRead": True,
        }
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = ddb.query(**kwargs)
        out += [(i["pk"]["S"], i["sk"]["S"]) for i in page.get("Items", [])]
        start = page.get("LastEvaluatedKey")
        if not start:
            return out


def stored_kpi_keys(ddb: Any, table: str, day: dt.date, genres: set[str]) -> set[tuple[str, str]]:
    found = set()
    for pk, sk in _query_keys(ddb, table, keys.day_pk(day)):
        if sk.startswith((keys.GENRE_RANK_PREFIX, keys.HOUR_PREFIX)):
            found.add((pk, sk))
    for genre in genres:
        found.update(_query_keys(ddb, table, keys.genre_day_pk(genre, day)))
    return found


def _transact(ddb: Any, actions: list[dict[str, Any]]) -> None:
    for attempt in range(10):
        try:
            ddb.transact_write_items(TransactItems=actions)
            return
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons:
                raise StaleResult("a newer version was written while applying this one") from exc
            retryable = code in (
                "TransactionConflictException",
                "ProvisionedThroughputExceededException",
                "ThrottlingException",
                "RequestLimitExceeded",
                "InternalServerError",
            ) or (code == "TransactionCanceledException" and {"TransactionConflict", "ThrottlingError"} & set(reasons))
            if not retryable or attempt == 9:
                raise TransientError(f"transaction failed: {code} {reasons}") from exc
            time.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.5))


def apply(ddb: Any, table: str, kpis: DayKpis, *, lease_seconds: int, wait_seconds: float) -> Applied:
    """Make the table hold exactly `kpis` for its date, unless a newer version is already there."""
    with date_lease(ddb, table, kpis.date, lease_seconds=lease_seconds, wait_seconds=wait_seconds):
        head = read_head(ddb, table, kpis.date)
        if head and int(head["version"]) > kpis.version:
            raise StaleResult(f"{kpis.date}: stored version {head['version']} is newer than {kpis.version}")
        old_genres = set(head.get("genres", [])) if head else set()
        new_genres = {g.genre for g in kpis.genres}
        items = all_items(kpis)
        desired = {(i["pk"], i["sk"]) for i in items}
        stale = stored_kpi_keys(ddb, table, kpis.date, old_genres | new_genres) - desired
        version = {":v": {"N": str(kpis.version)}}
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": table,
                    "Item": _wire(item),
                    "ConditionExpression": "attribute_not_exists(pk) OR version <= :v",
                    "ExpressionAttributeValues": version,
                }
            }
            for item in items
        ]
        actions += [
            {
                "Delete": {
                    "TableName": table,
                    "Key": _key(pk, sk),
                    "ConditionExpression": "attribute_not_exists(pk) OR version < :v",
                    "ExpressionAttributeValues": version,
                }
            }
            for pk, sk in sorted(stale)
        ]
        requests = 0
        for i in range(0, len(actions), TRANSACTION_LIMIT):
            _transact(ddb, actions[i : i + TRANSACTION_LIMIT])
            requests += 1
        bookkeeping = {
            "version": kpis.version,
            "computed_at": kpis.computed_at.isoformat(),
            "date": kpis.date.isoformat(),
            "events": kpis.events,
        }
        if new_genres:
            bookkeeping["genres"] = sorted(new_genres)
        _transact(
            ddb,
            [
                {
                    "Put": {
                        "TableName": table,
                        "Item": _wire({"pk": keys.day_pk(kpis.date), "sk": keys.HEAD_SK, **bookkeeping}),
                        "ConditionExpression": "attribute_not_exists(pk) OR version <= :v",
                        "ExpressionAttributeValues": version,
                    }
                },
                {
                    "Put": {
                        "TableName": table,
                        "Item": _wire(
                            {"pk": keys.CATALOG_DAYS_PK, "sk": keys.catalog_day_sk(kpis.date), **bookkeeping}
                        ),
                        "ConditionExpression": "attribute_not_exists(pk) OR version <= :v",
                        "ExpressionAttributeValues": version,
                    }
                },
            ],
        )
        return Applied(kpis.date, kpis.version, len(items), len(stale), requests + 1)
