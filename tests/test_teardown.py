"""What the `settings` fixture deletes after each test (`tests.support.sandbox.teardown`)."""

from __future__ import annotations

from pathlib import Path

from playcount.core import aws
from playcount.core.resources import resources
from playcount.devstack.sandbox import sandbox_settings
from playcount.ops.bootstrap import bootstrap
from tests.support.sandbox import teardown


def test_teardown_deletes_every_version_queue_and_table_and_skips_what_is_gone(emulator: str, tmp_path: Path) -> None:
    # GIVEN bootstrapped resources, the bucket versioned with objects, an old version and a delete
    # marker, and one queue and the table already deleted by the test itself
    settings = sandbox_settings(emulator, tmp_path)
    bootstrap(settings)
    res = resources(settings)
    s3, sqs, ddb = aws.client(settings, "s3"), aws.client(settings, "sqs"), aws.client(settings, "dynamodb")
    s3.put_bucket_versioning(Bucket=res.bucket, VersioningConfiguration={"Status": "Enabled"})
    for body in (b"1", b"2"):
        s3.put_object(Bucket=res.bucket, Key="streams/a.csv", Body=body)
    s3.put_object(Bucket=res.bucket, Key="streams/b.csv", Body=b"b")
    s3.delete_object(Bucket=res.bucket, Key="streams/b.csv")
    sqs.delete_queue(QueueUrl=aws.queue_url(sqs, res.queues[0].dlq_name))
    ddb.delete_table(TableName=res.table)

    # WHEN it is torn down, twice
    teardown(settings)
    teardown(settings)

    # THEN nothing of it is left
    assert res.bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    left = sqs.list_queues(QueueNamePrefix=settings.sqs_queue_prefix).get("QueueUrls", [])
    assert left == []
    assert res.table not in ddb.list_tables()["TableNames"]
