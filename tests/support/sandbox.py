"""Tear down what `ops.bootstrap.bootstrap` created for one test: the bucket, the queues and DLQs, the table.

Test code only (the randomly named resources of `playcount.devstack.sandbox.sandbox_settings` on
the test session's emulator): nothing here is for an account that holds data.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from playcount.core import aws
from playcount.core.config import Settings
from playcount.core.resources import resources

# what each service answers when the resource is already gone (a test may delete it itself)
_GONE = {
    "NoSuchBucket",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "ResourceNotFoundException",
}


def _gone(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in _GONE


def teardown(settings: Settings) -> None:
    """Delete the bucket (every object version and delete marker first), each queue and its DLQ,
    and the table; whatever is already gone is skipped, any other error is raised."""
    res = resources(settings)
    _delete_bucket(aws.client(settings, "s3"), res.bucket)
    sqs = aws.client(settings, "sqs")
    for spec in res.queues:
        for name in (spec.name, spec.dlq_name):
            _delete_queue(sqs, name)
    try:
        aws.client(settings, "dynamodb").delete_table(TableName=res.table)
    except ClientError as exc:
        if not _gone(exc):
            raise


def _delete_bucket(s3: Any, bucket: str) -> None:
    try:
        # versions and delete markers of a versioned bucket; plain objects (version "null") otherwise
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            doomed = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if doomed:  # at most 1000 per page, the most delete_objects takes
                s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})
        s3.delete_bucket(Bucket=bucket)
    except ClientError as exc:
        if not _gone(exc):
            raise


def _delete_queue(sqs: Any, name: str) -> None:
    try:
        sqs.delete_queue(QueueUrl=aws.queue_url(sqs, name))
    except ClientError as exc:
        if not _gone(exc):
            raise
