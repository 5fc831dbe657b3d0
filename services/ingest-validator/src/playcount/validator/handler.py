"""What one uploaded object goes through: judge, write durably, archive, then tell the runner.

Order matters for crash safety: lake files, quarantined rows and the report are written
first (deterministic keys, so a redelivery rewrites the same state); the original is archived
only after that; the runner is told last. A redelivered event whose report exists only
re-finishes (archive if needed, re-send), so at-least-once delivery leaves one outcome.

The object is read with boto3 (any key S3 accepts, `..` and `//` included) and only in the
version the event names (`IfMatch` on its ETag): a newer upload under the same key is judged
on its own event, never in place of the old one.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc
import structlog
from botocore.exceptions import ClientError

from playcount.core import aws, compaction, lake, ledger, metrics, snapshots
from playcount.core.config import Settings
from playcount.core.errors import TransientError
from playcount.core.known import KnownIds
from playcount.core.messages import FileKind, FileValidated, S3ObjectRef
from playcount.core.replay import replay_prefix
from playcount.core.reports import FileReport
from playcount.validator import dateindex, metadata, streams
from playcount.validator.csvinput import FileRejected, open_csv
from playcount.validator.quarantine import Quarantine, schema_for

log = structlog.get_logger(__name__)

_FILE_ID = re.compile(r"[0-9a-f]{24}")
UPSERT_ATTEMPTS = 8


@dataclass
class Validator:
    settings: Settings
    s3: Any
    ddb: Any
    sqs: Any
    fs: Any
    validated_queue_url: str
    _metadata_lock: threading.Lock = field(default_factory=threading.Lock)
    _known: dict[str, KnownIds] = field(init=False)

    def __post_init__(self) -> None:
        self._known = {kind: KnownIds(self.settings, self.s3, self.fs, kind) for kind in ("songs", "users")}

    # -- entry -----------------------------------------------------------------------------
    def kind_of(self, key: str) -> FileKind | None:
        s = self.settings
        if key.startswith(s.songs_prefix):
            return "songs"
        if key.startswith(s.users_prefix):
            return "users"
        if key.startswith(replay_prefix(s)):
            return "replay"  # quarantined rows sent again by `replay_quarantine`: judged like streams
        if key.startswith(s.s3_raw_data_prefix):
            return "streams"
        return None

    def handle(self, ref: S3ObjectRef) -> FileReport | None:
        """Judge one object; returns its report (None when the object is not ours to judge)."""
        kind = self.kind_of(ref.key)
        if kind is None or ref.bucket != self.settings.s3_bucket:
            log.info("object.ignored", bucket=ref.bucket, key=ref.key)
            return None
        fid = lake.file_id(ref.key, ref.etag)
        with structlog.contextvars.bound_contextvars(file_id=fid, s3_key=ref.key):
            existing = self._load_report(fid)
            if existing is not None:
                log.info("object.already_judged", status=existing.status)
                self._finish(existing, ref.etag)
                return existing
            ledger.mark_file(self.ddb, self.settings.dynamodb_table_name, fid, "received", {"files_received": 1})
            report = self._judge(kind, fid, ref)
            if report is None:
                return None
            self._put_json(lake.report_key(self.settings, fid), report.model_dump(mode="json"))
            self._finish(report, ref.etag)
            if report.kind in ("songs", "users") and report.status == "accepted":
                with self._metadata_lock:
                    self._compact(cast(snapshots.Kind, report.kind))
                # the catalog change pays for the index of its ids, not the next stream file
                self._known[report.kind].current()
            return report

    def _open_source(self, ref: S3ObjectRef) -> Any | None:
        kwargs = {"IfMatch": ref.etag} if ref.etag else {}
        try:
            return self.s3.get_object(Bucket=ref.bucket, Key=ref.key, **kwargs)["Body"]
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if aws.is_missing(exc):
                log.warning("object.gone", detail="no object and no report: deleted before it was judged")
                return None
            if code in ("PreconditionFailed", "412"):
                log.warning("object.superseded", detail="a newer upload replaced this version; it has its own event")
                return None
            raise

    def _judge(self, kind: FileKind, fid: str, ref: S3ObjectRef) -> FileReport | None:
        started = time.perf_counter()
        body = self._open_source(ref)
        if body is None:
            return None
        base = {"file_id": fid, "bucket": ref.bucket, "key": ref.key, "kind": kind, "uploaded_at": ref.event_time}
        try:
            if kind in ("streams", "replay"):
                report = self._streams(body, fid, ref, base)
            else:
                with self._metadata_lock:
                    report = self._metadata(body, fid, ref, kind, base)
        except FileRejected as rejected:
            report = self._reject_file(fid, ref, base, rejected)
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

    # -- streams ---------------------------------------------------------------------------
    def _streams(self, body: Any, fid: str, ref: S3ObjectRef, base: dict[str, Any]) -> FileReport:
        s = self.settings
        rejected_key = f"{lake.rejected_prefix(s, fid)}rows.csv"

        def on_day(day: dt.date, local: Path) -> None:
            _upload(self.fs, local, lake.path(s, lake.events_key(s, day, fid)))
            dateindex.write(s, self.fs, day, fid, local)  # before the runner hears of the date

        started = time.perf_counter()
        known_tracks, known_users = self._known["songs"].current(), self._known["users"].current()
        known_s = round(time.perf_counter() - started, 4)
        judged = streams.judge_file(
            body,
            ref.key,
            known_tracks=known_tracks,
            known_users=known_users,
            work_dir=self._work_dir(),
            on_day=on_day,
            on_quarantine=lambda local: _upload(self.fs, local, lake.path(s, rejected_key)),
        )
        judged.timings["known_ids_s"] = known_s
        metrics.ROWS.labels("accepted").inc(judged.rows_accepted)
        for reason, count in judged.by_reason.items():
            metrics.ROWS.labels(reason).inc(count)
        return FileReport(
            **base,
            status="accepted",
            rows_read=judged.rows_read,
            rows_accepted=judged.rows_accepted,
            rows_quarantined=judged.rows_quarantined,
            quarantined_by_reason=judged.by_reason,
            duplicates=judged.duplicates,
            dates=judged.dates,
            rejected_rows_key=rejected_key if judged.rows_quarantined else None,
            archived_key=lake.archive_key(s, ref.key),
            validated_at=dt.datetime.now(dt.UTC),
            timings=judged.timings,
        )

    # -- metadata --------------------------------------------------------------------------
    def _metadata(self, body: Any, fid: str, ref: S3ObjectRef, kind: FileKind, base: dict[str, Any]) -> FileReport:
        spec = metadata.SPECS[kind]
        id_col = spec.id_column
        stream = open_csv(body, ref.key, spec.required, spec.wanted, newlines_in_values=True)
        quarantine = Quarantine(Path(self._work_dir()) / f"{fid}-rejected.csv", schema_for(spec.wanted))
        accepted, rows, malformed = [], 0, 0
        try:
            for batch in stream.batches:
                judged = spec.judge(batch, rows + 1)
                rows += batch.num_rows
                accepted.append(judged.accepted)
                quarantine.write(judged.rejected)
                malformed += quarantine.write_malformed(stream.drain_malformed())
            malformed += quarantine.write_malformed(stream.drain_malformed())
            whole = (
                pa.concat_tables(accepted)
                if accepted
                else spec.schema.append(pa.field("line", pa.int64())).empty_table()
            )
            table, repeated = metadata.first_per_id(whole, id_col)
            if pc.any(repeated).as_py():
                quarantine.write(_repeats_as_rejected(whole.filter(repeated), id_col))
            rejected_key = self._upload_quarantine(fid, quarantine)
        finally:
            quarantine.close()
            quarantine.path.unlink(missing_ok=True)
        table = table.drop_columns(["line"])
        changed = self._upsert(cast(snapshots.Kind, kind), fid, table)
        # asked after the new manifest is stored: a date whose index appears later is computed
        # by its own file's message, which the runner handles with this catalog or a newer one
        dates = dateindex.dates_with(self.settings, self.s3, self.fs, id_col, changed)
        return FileReport(
            **base,
            status="accepted",
            rows_read=rows + malformed,
            rows_accepted=table.num_rows,
            rows_quarantined=quarantine.rows,
            quarantined_by_reason=quarantine.counts,
            dates=dates,
            changed_ids=len(changed),
            rejected_rows_key=rejected_key,
            archived_key=lake.archive_key(self.settings, ref.key),
            validated_at=dt.datetime.now(dt.UTC),
        )

    def _upsert(self, kind: snapshots.Kind, fid: str, table: pa.Table) -> list[str]:
        """Store the file's rows as the catalog's newest segment; the known ids whose attributes it changed.

        Applied once: a delivery that died after storing the manifest (before its report) left its
        segment listed under its file id, so the redelivery only compares it with the catalog as it
        was before that segment, and finds the same changed ids. Validators in other processes
        upsert concurrently: the manifest write is conditional, and the loser reads the new
        manifest and tries again (its unlisted segment is deleted by compaction later).
        """
        s, spec = self.settings, metadata.SPECS[kind]
        if table.num_rows == 0:
            return []
        columns = [spec.id_column, *spec.compare]
        ids = table[spec.id_column]
        for attempt in range(UPSERT_ATTEMPTS):
            manifest = snapshots.read_manifest(s, self.s3, kind)
            mine = next((seg for seg in manifest.segments if seg.name == fid), None)
            if mine is not None:
                before = snapshots.read_current(s, self.fs, manifest, columns, ids=ids, below_seq=mine.seq)
                return metadata.changed_ids(table, before, spec.id_column, spec.compare)
            before = snapshots.read_current(s, self.fs, manifest, columns, ids=ids)
            try:
                snapshots.upsert(s, self.s3, self.fs, manifest, fid, table)
            except snapshots.CatalogConflict:
                log.info("catalog.upsert_conflict", kind=kind, attempt=attempt + 1)
                time.sleep(random.uniform(0, 0.05 * (attempt + 1)))
                continue
            return metadata.changed_ids(table, before, spec.id_column, spec.compare)
        raise TransientError(f"the {kind} manifest kept changing: {UPSERT_ATTEMPTS} upserts lost the race")

    def _compact(self, kind: snapshots.Kind) -> None:
        """Keep the catalog's segments few; a segment of a file without a report is never merged."""
        manifest = snapshots.read_manifest(self.settings, self.s3, kind)
        try:
            after = compaction.compact(self.settings, self.s3, self.fs, manifest, mergeable=self._finished)
        except snapshots.CatalogConflict:
            log.warning("catalog.compaction_skipped", kind=kind, detail="the manifest changed meanwhile")
            return
        if after.segments != manifest.segments:
            log.info("catalog.compacted", kind=kind, segments=len(after.segments), rows=after.rows)

    def _finished(self, segment: snapshots.Segment) -> bool:
        """Whether the segment's file has its report (a compaction or a replaced catalog always has)."""
        if not _FILE_ID.fullmatch(segment.name):
            return True
        return self._current_etag(lake.report_key(self.settings, segment.name)) is not None

    # -- whole-file rejection ----------------------------------------------------------------
    def _reject_file(self, fid: str, ref: S3ObjectRef, base: dict[str, Any], rejected: FileRejected) -> FileReport:
        prefix = lake.rejected_prefix(self.settings, fid)
        original = f"{prefix}original/{ref.key.rsplit('/', 1)[-1] or 'object'}"
        copy_kwargs = {"CopySourceIfMatch": ref.etag} if ref.etag else {}
        self.s3.copy_object(
            Bucket=self.settings.s3_bucket,
            Key=original,
            CopySource={"Bucket": ref.bucket, "Key": ref.key},
            **copy_kwargs,
        )
        report = FileReport(
            **base,
            status="rejected",
            reason=rejected.reason,
            detail=rejected.detail,
            rejected_file_key=original,
            validated_at=dt.datetime.now(dt.UTC),
        )
        self._put_json(f"{prefix}report.json", report.model_dump(mode="json"))
        log.warning("object.rejected", reason=rejected.reason, detail=rejected.detail)
        return report

    # -- finishing: archive, count, forward ------------------------------------------------------
    def _finish(self, report: FileReport, etag: str | None) -> None:
        s = self.settings
        if report.status == "accepted":
            self._move(report.key, lake.archive_key(s, report.key), etag)
            counters = {
                "files_validated": 1,
                "rows_accepted": report.rows_accepted,
                "rows_quarantined": report.rows_quarantined,
            }
            state = "validated"
        else:
            self._delete_version(report.key, etag)  # a copy is kept under rejected/
            counters, state = {"files_rejected": 1}, "rejected"
        if ledger.mark_file(self.ddb, s.dynamodb_table_name, report.file_id, state, counters, reason=report.reason):
            metrics.FILES.labels(state).inc()
        if report.status == "accepted" and report.dates:
            message = FileValidated(
                kind=report.kind,
                file_id=report.file_id,
                source_key=report.key,
                dates=report.dates,
                report_key=lake.report_key(s, report.file_id),
                uploaded_at=report.uploaded_at,
                validated_at=report.validated_at,
            )
            self.sqs.send_message(QueueUrl=self.validated_queue_url, MessageBody=message.model_dump_json())

    def _current_etag(self, key: str) -> str | None:
        try:
            return str(self.s3.head_object(Bucket=self.settings.s3_bucket, Key=key)["ETag"]).strip('"')
        except ClientError as exc:
            if aws.is_missing(exc):
                return None
            raise

    def _move(self, key: str, target: str, etag: str | None) -> None:
        """Archive this version of `key`; a newer upload under the same key is left for its own event."""
        current = self._current_etag(key)
        if current is None or (etag and current != etag):
            return  # archived by an earlier delivery, or superseded
        bucket = self.settings.s3_bucket
        kwargs = {"CopySourceIfMatch": etag} if etag else {}
        try:
            self.s3.copy_object(Bucket=bucket, Key=target, CopySource={"Bucket": bucket, "Key": key}, **kwargs)
        except ClientError as exc:
            if not aws.is_missing(exc) and exc.response["Error"]["Code"] not in ("PreconditionFailed", "412"):
                raise
            return
        self._delete_version(key, etag)

    def _delete_version(self, key: str, etag: str | None) -> None:
        current = self._current_etag(key)
        if current is not None and (not etag or current == etag):
            self._delete(key)

    def _delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.settings.s3_bucket, Key=key)

    # -- small I/O helpers ---------------------------------------------------------------------
    def _work_dir(self) -> str:
        path = Path(self.settings.work_dir) / "validator"
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    def _load_report(self, fid: str) -> FileReport | None:
        try:
            body = self.s3.get_object(Bucket=self.settings.s3_bucket, Key=lake.report_key(self.settings, fid))["Body"]
        except ClientError as exc:
            if aws.is_missing(exc):
                return None
            raise
        return FileReport.model_validate_json(body.read())

    def _put_json(self, key: str, value: Any) -> None:
        self.s3.put_object(
            Bucket=self.settings.s3_bucket,
            Key=key,
            Body=json.dumps(value, indent=1).encode(),
            ContentType="application/json",
        )

    def _upload_quarantine(self, fid: str, quarantine: Quarantine) -> str | None:
        quarantine.close()
        if not quarantine.rows:
            return None
        key = f"{lake.rejected_prefix(self.settings, fid)}rows.csv"
        _upload(self.fs, quarantine.path, lake.path(self.settings, key))
        return key


def _repeats_as_rejected(repeats: pa.Table, id_col: str) -> pa.Table:
    return repeats.append_column("reason", pa.repeat(f"duplicate_{id_col}", repeats.num_rows))


def _upload(fs: Any, local: Path, target: str) -> None:
    with open(local, "rb") as src, fs.open_output_stream(target) as dst:
        while chunk := src.read(8 << 20):
            dst.write(chunk)
