"""Reconciliation: input files that no notification brought in are sent through as if notified.

S3 delivers its event notifications at least once, but a misconfigured or briefly deleted
notification, or a purged queue, drops events, and nothing downstream would notice. The sweep
(`playcount reconcile`, and every RECONCILE_SECONDS in one validator at a time):

1. lists the input prefixes (streams and metadata uploads with a notified suffix). A file the
   validator finished is no longer there (archived, or moved to the quarantine), so in steady
   state this lists only files in flight; `since` narrows it to recent uploads;
2. skips objects younger than the grace period (their notification may simply be queued);
3. keeps those the ledger has never seen (no `received` state for their file id, which is
   derived from key and ETag, exactly as for a notified upload);
4. sends each one an S3 event, shaped as S3's own, to the s3-events queue.

A file sent twice (its real event was only late) costs nothing: the validator recognises a
file it judged by its report, and the ledger's conditional puts count it once.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.parse
import uuid
from typing import TYPE_CHECKING

import structlog
from botocore.exceptions import ClientError
from pydantic import BaseModel

from playcount.core import aws, keys, lake
from playcount.core.config import Settings
from playcount.core.resources import NOTIFIED_SUFFIXES, S3_EVENTS, resources

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_s3 import S3Client
    from types_boto3_s3.type_defs import ObjectTypeDef
    from types_boto3_sqs import SQSClient

log = structlog.get_logger(__name__)

# how old an input file must be before a sweep sends it through (its notification may be queued)
DEFAULT_GRACE_SECONDS = 600.0


class SweepResult(BaseModel):
    listed: int = 0  # input objects with a notified suffix (after `since`)
    too_recent: int = 0  # younger than the grace period
    known: int = 0  # the ledger has seen them
    sent: list[str] = []  # keys sent through, as if notified


def _event(settings: Settings, obj: ObjectTypeDef) -> str:
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": settings.aws_region,
        "eventTime": obj["LastModified"].astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "playcount-reconcile"},
        "s3": {
            "bucket": {"name": settings.s3_bucket, "arn": f"arn:aws:s3:::{settings.s3_bucket}"},
            "object": {"key": urllib.parse.quote_plus(obj["Key"]), "size": obj["Size"], "eTag": obj["ETag"]},
        },
    }
    return json.dumps({"Records": [record]})


def _seen(ddb: DynamoDBClient, table: str, key: str, etag: str) -> bool:
    fid = lake.file_id(key, etag.strip('"'))
    item = ddb.get_item(
        TableName=table,
        Key={"pk": {"S": keys.file_state_pk(fid)}, "sk": {"S": keys.file_state_sk("received")}},
        ProjectionExpression="pk",
        ConsistentRead=True,
    )
    return "Item" in item


def sweep(
    settings: Settings,
    s3: S3Client,
    ddb: DynamoDBClient,
    sqs: SQSClient,
    *,
    grace_seconds: float,
    since: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> SweepResult:
    """One pass over the input prefixes (see the module's docstring)."""
    now = now or dt.datetime.now(dt.UTC)
    horizon = now - dt.timedelta(seconds=grace_seconds)
    queue = aws.queue_url(sqs, resources(settings).queue(S3_EVENTS).name)
    result = SweepResult()
    pages = s3.get_paginator("list_objects_v2")
    for prefix in (settings.s3_raw_data_prefix, settings.s3_metadata_prefix):
        for page in pages.paginate(Bucket=settings.s3_bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if not obj["Key"].endswith(NOTIFIED_SUFFIXES) or (since and obj["LastModified"] < since):
                    continue
                result.listed += 1
                if obj["LastModified"] > horizon:
                    result.too_recent += 1
                elif _seen(ddb, settings.dynamodb_table_name, obj["Key"], obj["ETag"]):
                    result.known += 1
                else:
                    sqs.send_message(QueueUrl=queue, MessageBody=_event(settings, obj))
                    result.sent.append(obj["Key"])
                    log.warning("reconcile.sent", key=obj["Key"], uploaded_at=obj["LastModified"].isoformat())
    log.info("reconcile.swept", **result.model_dump(exclude={"sent"}), sent=len(result.sent))
    return result


def take_lease(ddb: DynamoDBClient, table: str, seconds: float, owner: str | None = None) -> bool:
    """Whether this caller may sweep now: one sweep per `seconds` among every validator."""
    now = time.time()
    try:
        ddb.put_item(
            TableName=table,
            Item={
                "pk": {"S": keys.RECONCILE_PK},
                "sk": {"S": keys.LEASE_SK},
                "owner": {"S": owner or uuid.uuid4().hex},
                "expires": {"N": f"{now + seconds:.3f}"},
            },
            ConditionExpression="attribute_not_exists(pk) OR expires < :now",
            ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}},
        )
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
