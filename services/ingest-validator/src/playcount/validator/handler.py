"""What one uploaded object goes through: route it, judge it, store its report, finish it.

The concepts live in their own modules: `routing` (which kind of object a key is), `streams`
and `metadata` (judging a stream file, a songs or users file), `quarantine` (what a refused
row or file leaves under `rejected/`), `finishing` (the report, archive, ledger, the runner's
message). This module only runs them in order for one object.

Order matters for crash safety: lake files, quarantined rows and the report are written
first (deterministic keys, so a redelivery rewrites the same state); the original is archived
only after that; the runner is told last. A redelivered event whose report exists only
re-finishes (archive if needed, re-send), so at-least-once delivery leaves one outcome.

The object is read with boto3 (any key S3 accepts, `..` and `//` included) and only in the
version the event names (`IfMatch` on its ETag): a newer upload under the same key is judged
on its own event, never in place of the old one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import structlog
from botocore.exceptions import ClientError

from playcount.core import aws, compaction, lake, ledger, snapshots
from playcount.core.config import Settings
from playcount.core.known import KnownIds
from playcount.core.messages import FileKind, S3ObjectRef
from playcount.core.reports import FileReport
from playcount.core.s3 import is_missing, is_precondition_failed
from playcount.validator import finishing, metadata, quarantine, routing, streams
from playcount.validator.csvinput import FileRejected

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_s3 import S3Client
    from types_boto3_sqs import SQSClient

log = structlog.get_logger(__name__)


@dataclass
class Validator:
    settings: Settings
    s3: S3Client
    ddb: DynamoDBClient
    sqs: SQSClient
    fs: Any
    validated_queue_url: str
    _metadata_lock: threading.Lock = field(default_factory=threading.Lock)
    _known: dict[str, KnownIds] = field(init=False)

    def __post_init__(self) -> None:
        self._known = {kind: KnownIds(self.settings, self.s3, self.fs, kind) for kind in ("songs", "users")}

    def handle(self, ref: S3ObjectRef) -> FileReport | None:
        """Judge one object; returns its report (None when the object is not ours to judge)."""
        kind = routing.route(self.settings, ref)
        if kind is None:
            log.info("object.ignored", bucket=ref.bucket, key=ref.key)
            return None
        fid = lake.file_id(ref.key, ref.etag)
        with structlog.contextvars.bound_contextvars(file_id=fid, s3_key=ref.key):
            existing = finishing.load_report(self.settings, self.s3, fid)
            if existing is not None:
                log.info("object.already_judged", status=existing.status)
                self._finish(existing, ref.etag)
                return existing
            ledger.mark_file(self.ddb, self.settings.dynamodb_table_name, fid, "received", {"files_received": 1})
            report = self._judge(kind, fid, ref)
            if report is None:
                return None
            finishing.write_report(self.settings, self.s3, report)
            self._finish(report, ref.etag)
            if report.kind in ("songs", "users") and report.status == "accepted":
                with self._metadata_lock:
                    self._compact(cast(snapshots.Kind, report.kind))
                # the catalog change pays for the index of its ids, not the next stream file
                self._known[report.kind].current()
            return report

    def _open_source(self, ref: S3ObjectRef) -> Any | None:
        kwargs: aws.IfMatch = {"IfMatch": ref.etag} if ref.etag else {}
        try:
            return self.s3.get_object(Bucket=ref.bucket, Key=ref.key, **kwargs)["Body"]
        except ClientError as exc:
            if is_missing(exc):
                log.warning("object.gone", detail="no object and no report: deleted before it was judged")
                return None
            if is_precondition_failed(exc):
                log.warning("object.superseded", detail="a newer upload replaced this version; it has its own event")
                return None
            raise

    def _judge(self, kind: FileKind, fid: str, ref: S3ObjectRef) -> FileReport | None:
        started = time.perf_counter()
        body = self._open_source(ref)
        if body is None:
            return None
        base = {"file_id": fid, "bucket": ref.bucket, "key": ref.key, "kind": kind, "uploaded_at": ref.event_time}
        s = self.settings
        try:
            if kind in ("streams", "replay"):
                tracks, users = self._known["songs"], self._known["users"]
                report = streams.judge_object(s, self.fs, body, fid, ref, base, tracks=tracks, users=users)
            else:
                with self._metadata_lock:
                    report = metadata.judge_object(s, self.s3, self.fs, body, fid, ref, kind, base)
        except FileRejected as rejected:
            report = quarantine.reject_file(s, self.s3, fid, ref, base, rejected)
        finally:
            body.close()
        report.timings["total_s"] = round(time.perf_counter() - started, 4)
        log.info(
            "object.judged",
            status=report.status,
            rows=report.rows_read,
            accepted=report.rows_accepted,
            quarantined=report.rows_quarantined,
            seconds=report.timings["total_s"],
        )
        return report

    def _finish(self, report: FileReport, etag: str | None) -> None:
        """After the report, in this order: archive the original, mark the ledger, tell the runner."""
        finishing.archive(self.settings, self.s3, report, etag)
        finishing.mark(self.settings, self.ddb, report)
        finishing.announce(self.settings, self.sqs, self.validated_queue_url, report)

    def _compact(self, kind: snapshots.Kind) -> None:
        """Keep the catalog's segments few; a segment of a file without a report is never merged."""
        manifest = snapshots.read_manifest(self.settings, self.s3, kind)
        try:
            after = compaction.compact(
                self.settings,
                self.s3,
                self.fs,
                manifest,
                mergeable=lambda seg: metadata.mergeable(self.settings, self.s3, seg),
            )
        except snapshots.CatalogConflict:
            log.warning("catalog.compaction_skipped", kind=kind, detail="the manifest changed meanwhile")
            return
        if after.segments != manifest.segments:
            log.info("catalog.compacted", kind=kind, segments=len(after.segments), rows=after.rows)
