"""Pipeline bookkeeping in the KPI table: which state each file reached, and counters.

A file reaches a state once: its state item is a conditional put, so a redelivered message
never counts twice. When the state carries counter increments, the put and the increments are
one transaction, on one of `SHARDS` counter items chosen by the file (no hot item: N workers
marking files at once rarely meet on the same item, on AWS or in a transaction conflict). The
totals are the sum of the shards (one Query of a small partition), plus the single counter
item of earlier releases, so an existing table keeps its figures.

State items expire (`TTL_ATTRIBUTE`, the table's TTL) after `STATE_TTL`: longer than SQS ever
keeps a message (14 days), so a redelivery always still finds the state it would repeat.
"""

from __future__ import annotations

import datetime as dt
import random
import zlib
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict

import structlog
from botocore.exceptions import ClientError

from playcount.core import keys, retrying

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_dynamodb.type_defs import AttributeValueTypeDef, PutTypeDef, TransactWriteItemTypeDef

log = structlog.get_logger(__name__)

COUNTERS = (
    "files_received",
    "files_validated",
    "files_rejected",
    "files_processed",
    "rows_accepted",
    "rows_quarantined",
    "dates_computed",
    "dates_written",
)
COUNTERS_SK = "ALL"  # the one counter item of earlier releases: still part of the totals
SHARDS = 32
SHARD_PREFIX = "SHARD#"
TTL_ATTRIBUTE = "expires_at"
STATE_TTL = dt.timedelta(days=30)
TRANSACTION_ATTEMPTS = 8  # a transaction that met others on its items is tried this often in all


def shard_key(shard: int) -> dict[str, Any]:
    return {"pk": {"S": keys.COUNTERS_PK}, "sk": {"S": f"{SHARD_PREFIX}{shard:02d}"}}


class _Increments(TypedDict):
    """An UpdateItem's expression and its names and values (spread into the request)."""

    UpdateExpression: str
    ExpressionAttributeNames: dict[str, str]
    ExpressionAttributeValues: dict[str, AttributeValueTypeDef]


def _increments(counters: dict[str, int]) -> _Increments:
    """An UpdateItem's expression adding `counters`."""
    unknown = set(counters) - set(COUNTERS)
    if unknown:
        raise ValueError(f"unknown counters {sorted(unknown)}")
    return {
        "UpdateExpression": "ADD " + ", ".join(f"#c{i} :v{i}" for i in range(len(counters))),
        "ExpressionAttributeNames": {f"#c{i}": name for i, name in enumerate(counters)},
        "ExpressionAttributeValues": {f":v{i}": {"N": str(v)} for i, v in enumerate(counters.values())},
    }


def mark_file(
    ddb: DynamoDBClient, table: str, file_id: str, state: str, counters: dict[str, int], **attributes: Any
) -> bool:
    """Record that `file_id` reached `state` and add `counters`; False if it was recorded before.

    A transaction that meets another one on its items is tried again (`TRANSACTION_ATTEMPTS`
    tries in all, waits up to 20 ms doubling to 1 s, full jitter: `core.retrying`, logged as
    `ledger.transaction_retry`); after the last, its error is raised.
    """
    increments = _increments(counters) if counters else None
    now = dt.datetime.now(dt.UTC)
    state_item: dict[str, AttributeValueTypeDef] = {
        "pk": {"S": keys.file_state_pk(file_id)},
        "sk": {"S": keys.file_state_sk(state)},
        "at": {"S": now.isoformat()},
        TTL_ATTRIBUTE: {"N": str(int((now + STATE_TTL).timestamp()))},
    }
    for name, value in attributes.items():
        state_item[name] = {"S": str(value)}
    put: PutTypeDef = {"TableName": table, "Item": state_item, "ConditionExpression": "attribute_not_exists(pk)"}
    if increments is None:
        try:
            ddb.put_item(**put)
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
    shard = zlib.crc32(f"{file_id}\0{state}".encode()) % SHARDS
    updates: list[TransactWriteItemTypeDef] = [
        {"Put": put},
        {"Update": {"TableName": table, "Key": shard_key(shard), **increments}},
    ]
    try:
        for attempt in retrying.retrying(
            event="ledger.transaction_retry",
            retry_on=_is_contention,
            attempts=TRANSACTION_ATTEMPTS,
            base=0.02,
            cap=1.0,
            file_id=file_id,
            state=state,
        ):
            with attempt:
                ddb.transact_write_items(TransactItems=updates)
    except ClientError as exc:
        reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
        if exc.response["Error"]["Code"] == "TransactionCanceledException" and "ConditionalCheckFailed" in reasons:
            return False
        raise
    return True


def _is_contention(exc: BaseException) -> bool:
    """A transaction that met another one on its items (not our own condition failing): try again."""
    if not isinstance(exc, ClientError):
        return False
    code = exc.response["Error"]["Code"]
    reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
    if code == "TransactionCanceledException":
        return "ConditionalCheckFailed" not in reasons
    return code == "TransactionConflictException"


def file_states(ddb: DynamoDBClient, table: str, file_id: str) -> dict[str, dict[str, str]]:
    response = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.file_state_pk(file_id)}},
    )
    return {
        item["sk"]["S"].removeprefix("STATE#"): {k: v.get("S", "") for k, v in item.items()}
        for item in response.get("Items", [])
    }


def parse_counters(item: dict[str, Any] | None) -> dict[str, int]:
    """One counter item's figures (wire format or plain values)."""
    item = item or {}
    out = {}
    for name in COUNTERS:
        raw = item.get(name, 0)
        if isinstance(raw, dict):
            raw = raw.get("N", 0)
        out[name] = int(Decimal(str(raw)))
    return out


def is_counter_item(sk: str) -> bool:
    return sk == COUNTERS_SK or sk.startswith(SHARD_PREFIX)


def sum_counters(items: Iterable[dict[str, Any]]) -> dict[str, int]:
    """The totals over the items of the counters partition (other items there are skipped)."""
    totals = dict.fromkeys(COUNTERS, 0)
    for item in items:
        sk = item["sk"]["S"] if isinstance(item["sk"], dict) else item["sk"]
        if is_counter_item(sk):
            for name, value in parse_counters(item).items():
                totals[name] += value
    return totals


def read_counters(ddb: DynamoDBClient, table: str) -> dict[str, int]:
    items: list[dict[str, Any]] = []
    query: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": keys.COUNTERS_PK}},
        "ConsistentRead": True,
    }
    while True:
        page = ddb.query(**query)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return sum_counters(items)
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def record_freshness(ddb: DynamoDBClient, table: str, lag_seconds: float, file_id: str) -> None:
    """Keep the latest upload-to-queryable lag, and log it as `freshness.recorded`.

    The log event is a contract: infra/playcount.yaml turns it into the FreshnessLagSeconds
    CloudWatch metric (a metric filter on `event` and `lag_seconds`).
    """
    ddb.put_item(
        TableName=table,
        Item={
            "pk": {"S": keys.COUNTERS_PK},
            "sk": {"S": keys.FRESHNESS_SK},
            "lag_seconds": {"N": f"{lag_seconds:.3f}"},
            "file_id": {"S": file_id},
            "at": {"S": dt.datetime.now(dt.UTC).isoformat()},
        },
    )
    log.info("freshness.recorded", lag_seconds=round(lag_seconds, 3), file_id=file_id)


def add_counters(ddb: DynamoDBClient, table: str, counters: dict[str, int]) -> None:
    """Add to counters without an idempotency key (for figures where a retry may count twice)."""
    ddb.update_item(TableName=table, Key=shard_key(random.randrange(SHARDS)), **_increments(counters))
