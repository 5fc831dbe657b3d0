"""Pipeline bookkeeping in the KPI table: which state each file reached, and counters.

A file reaches a state once: the state item is a conditional put, in one transaction with
the counter increments, so a redelivered message never counts twice.
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from typing import Any

import structlog
from botocore.exceptions import ClientError

from playcount.core import keys

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
COUNTERS_SK = "ALL"


def mark_file(ddb: Any, table: str, file_id: str, state: str, counters: dict[str, int], **attributes: Any) -> bool:
    """Record that `file_id` reached `state` and add `counters`; False if it was recorded before."""
    unknown = set(counters) - set(COUNTERS)
    if unknown:
        raise ValueError(f"unknown counters {sorted(unknown)}")
    state_item = {
        "pk": {"S": keys.file_state_pk(file_id)},
        "sk": {"S": keys.file_state_sk(state)},
        "at": {"S": dt.datetime.now(dt.UTC).isoformat()},
    }
    for name, value in attributes.items():
        state_item[name] = {"S": str(value)}
    updates = [{"Put": {"TableName": table, "Item": state_item, "ConditionExpression": "attribute_not_exists(pk)"}}]
    if counters:
        names = {f"#c{i}": name for i, name in enumerate(counters)}
        values = {f":v{i}": {"N": str(v)} for i, v in enumerate(counters.values())}
        updates.append(
            {
                "Update": {
                    "TableName": table,
                    "Key": {"pk": {"S": keys.COUNTERS_PK}, "sk": {"S": COUNTERS_SK}},
                    "UpdateExpression": "ADD " + ", ".join(f"#c{i} :v{i}" for i in range(len(counters))),
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            }
        )
    for attempt in range(8):
        try:
            ddb.transact_write_items(TransactItems=updates)
            return True
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if code == "TransactionCanceledException" and "ConditionalCheckFailed" in reasons:
                return False
            if code in ("TransactionCanceledException", "TransactionConflictException") and attempt < 7:
                time.sleep(0.02 * 2**attempt)
                continue
            raise
    return False  # pragma: no cover


def file_states(ddb: Any, table: str, file_id: str) -> dict[str, dict[str, str]]:
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
    item = item or {}
    out = {}
    for name in COUNTERS:
        raw = item.get(name, 0)
        if isinstance(raw, dict):
            raw = raw.get("N", 0)
        out[name] = int(Decimal(str(raw)))
    return out


def read_counters(ddb: Any, table: str) -> dict[str, int]:
    response = ddb.get_item(
        TableName=table, Key={"pk": {"S": keys.COUNTERS_PK}, "sk": {"S": COUNTERS_SK}}, ConsistentRead=True
    )
    return parse_counters(response.get("Item"))


def record_freshness(ddb: Any, table: str, lag_seconds: float, file_id: str) -> None:
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


def add_counters(ddb: Any, table: str, counters: dict[str, int]) -> None:
    """Add to counters without an idempotency key (for figures where a retry may count twice)."""
    names = {f"#c{i}": name for i, name in enumerate(counters)}
    values = {f":v{i}": {"N": str(v)} for i, v in enumerate(counters.values())}
    ddb.update_item(
        TableName=table,
        Key={"pk": {"S": keys.COUNTERS_PK}, "sk": {"S": COUNTERS_SK}},
        UpdateExpression="ADD " + ", ".join(f"#c{i} :v{i}" for i in range(len(counters))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )
