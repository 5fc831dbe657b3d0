"""Apply one day's KPIs to the table: complete replacement, idempotent, never back in time.

1. claim the date (one conditional UpdateItem on its HEAD): take the lease, read what is
   stored, register the genres about to be written; a replay or an older result stops here;
2. find the stored keys: the HEAD's manifest when the last apply finished, otherwise (first
   write by an older writer, or an apply cut short) the date's partitions, queried;
3. put every item of the result and delete every stored item it no longer contains, in
   parallel, each write conditioned on the version (`writes`);
4. put the catalogue entry, then commit: HEAD gets the version and the new manifest and the
   lease is released, in one conditional write.
Any failure after step 1 releases the lease but leaves the write-ahead intent, so the next
apply of the date (a redelivery, or a newer result) re-reads the partitions and removes
whatever the cut-short apply left behind. A writer that finds a newer version has the date
(one of its writes was refused, or its lease went to a newer result) first takes back the
items it put: those still carrying its version.
"""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from playcount.core import keys
from playcount.core.errors import StaleResult
from playcount.core.kpi_items import Item, all_items
from playcount.core.kpis import DayKpis
from playcount.writer import lease
from playcount.writer.config import WriterOptions
from playcount.writer.manifest import Key
from playcount.writer.retry import Backoff
from playcount.writer.writes import PUT_CONDITION, Tally, Write, take_back, write_all

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient

_ser = TypeSerializer()
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Applied:
    date: dt.date
    version: int
    written: int
    deleted: int
    requests: int
    skipped: bool = False  # this exact version was already applied: nothing was written
    queried: int = 0  # partitions read to find stored keys (0 when the manifest sufficed)
    retried: int = 0  # writes sent again after throttling or a transient error
    seconds: float = 0.0


def _wire(item: Item) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in item.items()}


def _query_keys(ddb: DynamoDBClient, table: str, pk: str, sk: str | None = None) -> list[Key]:
    """The keys stored in partition `pk` (only the item `sk` of it, when given)."""
    out: list[Key] = []
    start = None
    values = {":pk": {"S": pk}} | ({":sk": {"S": sk}} if sk else {})
    while True:
        kwargs: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "pk = :pk AND sk = :sk" if sk else "pk = :pk",
            "ExpressionAttributeValues": values,
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


def _is_kpi_key(key: Key) -> bool:
    """KPI items of a date; HEAD (and the LOCK item of earlier writers) are bookkeeping."""
    pk, sk = key
    if pk.startswith((keys.GENRE_PK_PREFIX, keys.TREND_PK_PREFIX)):
        return True
    return sk.startswith((keys.GENRE_RANK_PREFIX, keys.HOUR_PREFIX, keys.RANKING_PREFIX))


def stored_keys(
    ddb: DynamoDBClient, table: str, day: dt.date, prior: lease.Prior, new_genres: set[str], pool: Executor
) -> tuple[set[Key], int]:
    """The keys of the KPI items stored for `day`, and how many partitions were queried."""
    if prior.version is None and not prior.interrupted:
        return set(), 0  # nothing was ever written for this date
    if prior.manifest is not None and not prior.interrupted:
        return set(prior.manifest), 0
    genres = sorted(prior.genres | prior.pending_genres | new_genres)
    # a genre's trend partition holds all its dates: only this date's item is read
    partitions: list[tuple[str, str | None]] = [(keys.day_pk(day), None)]
    partitions += [(keys.genre_day_pk(g, day), None) for g in genres]
    partitions += [(keys.trend_pk(g), keys.date_sk(day)) for g in genres]
    found = {k for part in pool.map(lambda p: _query_keys(ddb, table, *p), partitions) for k in part}
    return {k for k in found if _is_kpi_key(k)} | set(prior.manifest or ()), len(partitions)


def _put_catalogue(ddb: DynamoDBClient, table: str, kpis: DayKpis) -> None:
    item: dict[str, Any] = {
        "pk": keys.CATALOG_DAYS_PK,
        "sk": keys.date_sk(kpis.date),
        "version": kpis.version,
        "computed_at": kpis.computed_at.isoformat(),
        "date": kpis.date.isoformat(),
        "events": kpis.events,
        "trend_items": True,  # the date's genres have trend items (`kpi_items.trend_item`)
    }
    if kpis.unique_listeners is not None:
        item["unique_listeners"] = kpis.unique_listeners
    genres = sorted({g.genre for g in kpis.genres})
    if genres:
        item["genres"] = genres
    try:
        ddb.put_item(
            TableName=table,
            Item=_wire(item),
            ConditionExpression=PUT_CONDITION,
            ExpressionAttributeValues={":v": {"N": str(kpis.version)}},
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise StaleResult(f"{kpis.date}: the catalogue holds a newer version than {kpis.version}") from exc
        raise


def apply(
    ddb: DynamoDBClient,
    table: str,
    kpis: DayKpis,
    *,
    lease_seconds: float | None = None,
    wait_seconds: float | None = None,
    options: WriterOptions | None = None,
    pool: Executor | None = None,
) -> Applied:
    """Make the table hold exactly `kpis` for its date, unless this or a newer version is there.

    Raises StaleResult (a newer version is stored), TransientError (the date stayed busy, the
    lease was lost, or writes kept failing transiently), or `keys.KeyError_` (a value that
    cannot be part of a key: the result can never be applied).
    """
    options = options or WriterOptions()
    if lease_seconds is not None:
        options = options.replace(lease_seconds=lease_seconds)
    if wait_seconds is not None:
        options = options.replace(claim_wait_seconds=wait_seconds)
    started = time.perf_counter()
    items = all_items(kpis)  # before the claim: a result with an invalid key never takes the lease
    desired = {(i["pk"], i["sk"]) for i in items}
    claim = lease.claim(ddb, table, kpis, lease_seconds=options.lease_seconds, wait_seconds=options.claim_wait_seconds)
    if claim is None:
        return Applied(kpis.date, kpis.version, 0, 0, 1, skipped=True, seconds=time.perf_counter() - started)
    with ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(ThreadPoolExecutor(options.parallelism, thread_name_prefix="writer"))
        try:
            stored, queried = stored_keys(ddb, table, kpis.date, claim.prior, {g.genre for g in kpis.genres}, pool)
            writes = [Write((i["pk"], i["sk"]), _wire(i)) for i in items]
            writes += [Write(key) for key in sorted(stored - desired)]
            try:
                tally: Tally = write_all(
                    ddb, table, kpis.version, writes, pool=pool, backoff=options.backoff(), guard=claim.ensure
                )
                claim.ensure()
                _put_catalogue(ddb, table, kpis)
                claim.commit(kpis, desired)
            except (StaleResult, lease.LeaseLost) as exc:
                # a newer result has the date: what we put must not outlive us (it may lack
                # those keys). After a lost lease only if the new holder is newer: a holder of
                # the same version (a redelivery of this message) writes exactly our items.
                if isinstance(exc, StaleResult) or lease.newer_than(ddb, table, kpis.date, kpis.version):
                    taken = take_back(ddb, table, kpis.version, desired, pool=pool)
                    log.info("apply.taken_back", date=str(kpis.date), version=kpis.version, items=taken)
                raise
        except BaseException:
            claim.release()
            raise
    return Applied(
        kpis.date,
        kpis.version,
        written=tally.puts,
        deleted=tally.deletes,
        requests=claim.requests + queried + tally.requests + 1,
        queried=queried,
        retried=tally.retried,
        seconds=time.perf_counter() - started,
    )


__all__ = ["Applied", "Backoff", "apply", "stored_keys"]
