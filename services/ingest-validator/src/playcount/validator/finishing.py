"""What follows a file's report: archive the original, mark the ledger, tell the runner.

The report (`reports/{file_id}.json`) is the commit point of a judgement: everything a file
produces (lake files, quarantined rows, the catalog segment) is written before it, and these
steps only after it, in this order: `archive` (an accepted original is copied to `archive/`
and deleted; a rejected one is deleted, its copy is kept under `rejected/`), then `mark` (the
ledger's state and counters, once per file), then `announce` (one "file validated" message
when the file touched dates). Each step is idempotent and only touches the version the event
named, so a redelivered event whose report exists re-runs them all and leaves one outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from playcount.core import aws, lake, ledger
from playcount.core.config import Settings
from playcount.core.messages import FileValidated
from playcount.core.reports import FileReport
from playcount.core.s3 import is_missing, is_precondition_failed
from playcount.validator import metrics, storage

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_s3 import S3Client
    from types_boto3_sqs import SQSClient


def load_report(settings: Settings, s3: S3Client, fid: str) -> FileReport | None:
    """The report of file `fid`, or None when it was never judged to the end."""
    try:
        body = s3.get_object(Bucket=settings.s3_bucket, Key=lake.report_key(settings, fid))["Body"]
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise
    return FileReport.model_validate_json(body.read())


def write_report(settings: Settings, s3: S3Client, report: FileReport) -> None:
    """Store the report: the judgement is durable from here on."""
    storage.put_json(settings, s3, lake.report_key(settings, report.file_id), report.model_dump(mode="json"))


def has_report(settings: Settings, s3: S3Client, fid: str) -> bool:
    return _current_etag(settings, s3, lake.report_key(settings, fid)) is not None


def archive(settings: Settings, s3: S3Client, report: FileReport, etag: str | None) -> None:
    """Take the judged version of the original out of the upload area."""
    if report.status == "accepted":
        _move(settings, s3, report.key, lake.archive_key(settings, report.key), etag)
    else:
        _delete_version(settings, s3, report.key, etag)  # a copy is kept under rejected/


def mark(settings: Settings, ddb: DynamoDBClient, report: FileReport) -> None:
    """Record the file's outcome and counters in the ledger; the metric counts it once."""
    if report.status == "accepted":
        counters = {
            "files_validated": 1,
            "rows_accepted": report.rows_accepted,
            "rows_quarantined": report.rows_quarantined,
        }
        state = "validated"
    else:
        counters, state = {"files_rejected": 1}, "rejected"
    if ledger.mark_file(ddb, settings.dynamodb_table_name, report.file_id, state, counters, reason=report.reason):
        metrics.FILES.labels(state).inc()


def announce(settings: Settings, sqs: SQSClient, queue_url: str, report: FileReport) -> None:
    """Tell the runner which dates an accepted file touched (nothing to say otherwise)."""
    if report.status != "accepted" or not report.dates:
        return
    message = FileValidated(
        kind=report.kind,
        file_id=report.file_id,
        source_key=report.key,
        dates=report.dates,
        report_key=lake.report_key(settings, report.file_id),
        uploaded_at=report.uploaded_at,
        validated_at=report.validated_at,
    )
    sqs.send_message(QueueUrl=queue_url, MessageBody=message.model_dump_json())


def _current_etag(settings: Settings, s3: S3Client, key: str) -> str | None:
    try:
        return str(s3.head_object(Bucket=settings.s3_bucket, Key=key)["ETag"]).strip('"')
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise


def _move(settings: Settings, s3: S3Client, key: str, target: str, etag: str | None) -> None:
    """Archive this version of `key`; a newer upload under the same key is left for its own event."""
    current = _current_etag(settings, s3, key)
    if current is None or (etag and current != etag):
        return  # archived by an earlier delivery, or superseded
    bucket = settings.s3_bucket
    kwargs: aws.CopyIfMatch = {"CopySourceIfMatch": etag} if etag else {}
    try:
        s3.copy_object(Bucket=bucket, Key=target, CopySource={"Bucket": bucket, "Key": key}, **kwargs)
    except ClientError as exc:
        if not is_missing(exc) and not is_precondition_failed(exc):
            raise
        return
    _delete_version(settings, s3, key, etag)


def _delete_version(settings: Settings, s3: S3Client, key: str, etag: str | None) -> None:
    current = _current_etag(settings, s3, key)
    if current is not None and (not etag or current == etag):
        s3.delete_object(Bucket=settings.s3_bucket, Key=key)
