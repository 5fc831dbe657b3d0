"""Create every AWS resource Playcount needs, idempotently (embedded stack, compose, tests).

Names come from `resources`; run it as often as you like.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import structlog
from botocore.exceptions import ClientError

from playcount.core import aws, ledger
from playcount.core.config import Settings
from playcount.core.resources import NOTIFIED_SUFFIXES, S3_EVENTS, QueueSpec, Resources, resources

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_s3 import S3Client
    from types_boto3_s3.type_defs import NotificationConfigurationTypeDef
    from types_boto3_sqs import SQSClient
    from types_boto3_sqs.literals import QueueAttributeNameType

log = structlog.get_logger(__name__)


def bootstrap(settings: Settings) -> Resources:
    res = resources(settings)
    s3 = aws.client(settings, "s3")
    sqs = aws.client(settings, "sqs")
    ddb = aws.client(settings, "dynamodb")
    _bucket(s3, settings)
    arns = {q.stage: _queue(sqs, q, settings) for q in res.queues}
    _allow_s3(sqs, res.queue(S3_EVENTS), arns[S3_EVENTS], res.bucket)
    _notifications(s3, res, arns[S3_EVENTS])
    _table(ddb, res.table)
    log.info("bootstrap.done", bucket=res.bucket, table=res.table, queues=[q.name for q in res.queues])
    return res


def _bucket(s3: S3Client, settings: Settings) -> None:
    kwargs: dict[str, Any] = {"Bucket": settings.s3_bucket}
    if settings.aws_region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": settings.aws_region}
    try:
        s3.create_bucket(**kwargs)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise


def _create_or_update_queue(sqs: SQSClient, name: str, attributes: dict[QueueAttributeNameType, str]) -> str:
    try:
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("QueueAlreadyExists", "QueueNameExists"):
            raise
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return str(url)


def _arn(sqs: SQSClient, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def _queue(sqs: SQSClient, spec: QueueSpec, settings: Settings) -> str:
    dlq_url = _create_or_update_queue(sqs, spec.dlq_name, {"MessageRetentionPeriod": "1209600"})
    redrive = json.dumps({"deadLetterTargetArn": _arn(sqs, dlq_url), "maxReceiveCount": settings.sqs_max_receive_count})
    url = _create_or_update_queue(
        sqs,
        spec.name,
        {
            "VisibilityTimeout": str(settings.sqs_visibility_timeout),
            "MessageRetentionPeriod": "1209600",
            "RedrivePolicy": redrive,
        },
    )
    return _arn(sqs, url)


def _allow_s3(sqs: SQSClient, spec: QueueSpec, arn: str, bucket: str) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": arn,
                "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}},
            }
        ],
    }
    url = sqs.get_queue_url(QueueName=spec.name)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})


def notification_configuration(res: Resources, queue_arn: str) -> NotificationConfigurationTypeDef:
    return {
        "QueueConfigurations": [
            {
                "Id": f"{prefix.strip('/')}{suffix}".replace("/", "-"),
                "QueueArn": queue_arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {
                    "Key": {
                        "FilterRules": [
                            {"Name": "prefix", "Value": prefix},
                            {"Name": "suffix", "Value": suffix},
                        ]
                    }
                },
            }
            for prefix in res.notified_prefixes
            for suffix in NOTIFIED_SUFFIXES
        ]
    }


def _notifications(s3: S3Client, res: Resources, queue_arn: str) -> None:
    s3.put_bucket_notification_configuration(
        Bucket=res.bucket, NotificationConfiguration=notification_configuration(res, queue_arn)
    )


def _table(ddb: DynamoDBClient, name: str) -> None:
    try:
        ddb.create_table(
            TableName=name,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        # ledger state items expire (ledger.STATE_TTL); KPI items carry no such attribute
        ddb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ledger.TTL_ATTRIBUTE}
        )
