"""What one uploaded object goes through: judge, write durably, archive, then tell the runner.

Order matters for crash safety: lake files, quarantined rows and the report are written
first (deterministic keys, so a redelivery rewrites the same state); the original is archived
only after that; the runner is told last. A redelivered event whose report exists only
re-finishes (archive if needed, re-send), so at-least-once delivery leaves one outcome.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import structlog
from botocore.exceptions import ClientError

from playcount.core import lake, ledger, metrics
from playcount.core.config import Settings
from playcount.core.messages import FileKind, FileValidated, S3ObjectRef
from playcount.core.reports import FileReport
from playcount.validator import metadata, rules
from playcount.validator.csvinput import FileRejected, open_csv
from playcount.validator.staging import Staging

log = structlog.get_logger(__name__)

STREAM_COLUMNS = ("user_id", "track_id", "listen_time")


@dataclass
class Validator:
    settings: Settings
    s3: Any
    ddb: Any
    sqs: Any
    fs: Any
    validated_queue_url: str
    _metadata_lock: threading.Lock = field(default_factory=threading.Lock)

    # -- entry -----------------------------------------------------------------------------
    def kind_of(self, key: str) -> FileKind | None:
        s = self.settings
        if key.startswith(s.songs_prefix):
            return "songs"
        if key.startswith(s.users_prefix):
            return "users"
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
                self._finish(existing)
                return existing
            ledger.mark_file(self.ddb, self.settings.dynamodb_table_name, fid, "received", {"files_received": 1})
            report = self._judge(kind, fid, ref)
            if report is None:
                return None
            self._put_json(lake.report_key(self.settings, fid), report.model_dump(mode="json"))
            self._finish(report)
            return report

    def _judge(self, kind: FileKind, fid: str, ref: S3ObjectRef) -> FileReport | None:
        started = time.perf_counter()
        try:
            raw = self.fs.open_input_stream(lake.path(self.settings, ref.key))
        except FileNotFoundError:
            log.warning("object.gone", detail="no object and no report: deleted before it was judged")
            return None
        base = {"file_id": fid, "bucket": ref.bucket, "key": ref.key, "kind": kind, "uploaded_at": ref.event_time}
        try:
            with raw:
                if kind == "streams":
                    report = self._streams(raw, fid, ref, base)
                else:
                    with self._metadata_lock:
                        report = self._metadata(raw, fid, ref, kind, base)
        except FileRejected as rejected:
            report = self._reject_file(fid, ref, base, rejected)
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
    def _streams(self, raw: Any, fid: str, ref: S3ObjectRef, base: dict[str, Any]) -> FileReport:
        stream = open_csv(raw, ref.key, STREAM_COLUMNS, STREAM_COLUMNS)
        known_tracks = self._known(lake.songs_key(self.settings), "track_id")
        known_users = self._known(lake.users_key(self.settings), "user_id")
        now = dt.datetime.now(dt.UTC)
        staging = Staging(self._work_dir())
        quarantine = _Quarantine(staging.dir / "rejected.csv")
        rows = 0
        t_read = time.perf_counter()
        try:
            for batch in stream.batches:
                judged = rules.judge_streams(batch, rows + 1, known_tracks, known_users, now)
                rows += batch.num_rows
                staging.add(judged.accepted)
                quarantine.write(judged.rejected)
            read_s = time.perf_counter() - t_read
            t_write = time.perf_counter()
            dates, duplicates = [], 0
            for day, local, dupes in staging.finish():
                _upload(self.fs, local, lake.path(self.settings, lake.events_key(self.settings, day, fid)))
                dates.append(day)
                if dupes.num_rows:
                    duplicates += dupes.num_rows
                    quarantine.write(_duplicates_as_rejected(dupes))
            rejected_key = self._upload_quarantine(fid, quarantine)
            write_s = time.perf_counter() - t_write
        finally:
            quarantine.close()
            staging.close()
        by_reason = quarantine.counts
        accepted = rows - sum(by_reason.values())
        metrics.ROWS.labels("accepted").inc(accepted)
        for reason, count in by_reason.items():
            metrics.ROWS.labels(reason).inc(count)
        return FileReport(
            **base,
            status="accepted",
            rows_read=rows,
            rows_accepted=accepted,
            rows_quarantined=sum(by_reason.values()),
            quarantined_by_reason=by_reason,
            duplicates=duplicates,
            dates=dates,
            rejected_rows_key=rejected_key,
            archived_key=lake.archive_key(self.settings, ref.key),
            validated_at=dt.datetime.now(dt.UTC),
            timings={"read_judge_s": round(read_s, 4), "write_s": round(write_s, 4)},
        )

    # -- metadata --------------------------------------------------------------------------
    def _metadata(self, raw: Any, fid: str, ref: S3ObjectRef, kind: FileKind, base: dict[str, Any]) -> FileReport:
        spec = metadata.SPECS[kind]
        id_col = spec.id_column
        snapshot_key = lake.songs_key(self.settings) if kind == "songs" else lake.users_key(self.settings)
        stream = open_csv(raw, ref.key, spec.required, spec.wanted)
        accepted, rejected, rows = [], [], 0
        for batch in stream.batches:
            judged = spec.judge(batch, rows + 1)
            rows += batch.num_rows
            accepted.append(judged.accepted)
            rejected.append(judged.rejected)
        whole = pa.concat_tables(accepted) if accepted else spec.schema.empty_table()
        table, repeated = metadata.first_per_id(whole, id_col)
        staging_dir = Path(self._work_dir())
        quarantine = _Quarantine(staging_dir / f"{fid}-rejected.csv")
        try:
            for part in rejected:
                quarantine.write(part)
            if pc.any(repeated).as_py():
                quarantine.write(_repeats_as_rejected(whole.filter(repeated), id_col))
            rejected_key = self._upload_quarantine(fid, quarantine)
        finally:
            quarantine.close()
        current = self._read_table(snapshot_key)
        snapshot, changed = metadata.upsert(current, table, id_col, spec.compare)
        self._write_table(snapshot_key, snapshot)
        dates = self._dates_with(id_col, changed)
        by_reason = quarantine.counts
        return FileReport(
            **base,
            status="accepted",
            rows_read=rows,
            rows_accepted=table.num_rows,
            rows_quarantined=sum(by_reason.values()),
            quarantined_by_reason=by_reason,
            dates=dates,
            changed_ids=len(changed),
            rejected_rows_key=rejected_key,
            archived_key=lake.archive_key(self.settings, ref.key),
            validated_at=dt.datetime.now(dt.UTC),
        )

    def _dates_with(self, column: str, ids: list[str]) -> list[dt.date]:
        """The dates whose lake partitions hold events of the given tracks or users."""
        if not ids:
            return []
        root = lake.path(self.settings, lake.streams_root(self.settings))
        try:
            dataset = ds.dataset(root, filesystem=self.fs, format="parquet", partitioning="hive")
            hits = dataset.to_table(columns=["listen_date"], filter=ds.field(column).isin(ids))
        except (FileNotFoundError, pa.ArrowInvalid):
            return []
        return sorted({dt.date.fromisoformat(str(d)) for d in pc.unique(hits["listen_date"]).to_pylist()})

    # -- whole-file rejection ----------------------------------------------------------------
    def _reject_file(self, fid: str, ref: S3ObjectRef, base: dict[str, Any], rejected: FileRejected) -> FileReport:
        prefix = lake.rejected_prefix(self.settings, fid)
        original = f"{prefix}original/{ref.key.rsplit('/', 1)[-1]}"
        self.s3.copy_object(
            Bucket=self.settings.s3_bucket, Key=original, CopySource={"Bucket": ref.bucket, "Key": ref.key}
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
    def _finish(self, report: FileReport) -> None:
        s = self.settings
        if report.status == "accepted":
            self._move(report.key, lake.archive_key(s, report.key))
            counters = {
                "files_validated": 1,
                "rows_accepted": report.rows_accepted,
                "rows_quarantined": report.rows_quarantined,
            }
            state = "validated"
        else:
            self._delete(report.key)
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

    def _move(self, key: str, target: str) -> None:
        bucket = self.settings.s3_bucket
        try:
            self.s3.copy_object(Bucket=bucket, Key=target, CopySource={"Bucket": bucket, "Key": key})
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("NoSuchKey", "404"):
                raise
            return  # archived by an earlier delivery
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
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
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

    def _read_table(self, key: str) -> pa.Table | None:
        try:
            return pq.read_table(lake.path(self.settings, key), filesystem=self.fs)
        except (FileNotFoundError, OSError):
            return None

    def _write_table(self, key: str, table: pa.Table) -> None:
        pq.write_table(table, lake.path(self.settings, key), filesystem=self.fs)

    def _known(self, key: str, column: str) -> pa.Array | None:
        table = self._read_table(key)
        return None if table is None else table[column].combine_chunks()

    def _upload_quarantine(self, fid: str, quarantine: _Quarantine) -> str | None:
        quarantine.close()
        if not quarantine.rows:
            return None
        key = f"{lake.rejected_prefix(self.settings, fid)}rows.csv"
        _upload(self.fs, quarantine.path, lake.path(self.settings, key))
        return key


class _Quarantine:
    """Rejected rows as CSV (original values, their line and a `reason`), streamed to local disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self.counts: dict[str, int] = {}
        self._writer: pacsv.CSVWriter | None = None
        self._schema: pa.Schema | None = None

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self._writer is None:
            self._schema = table.schema
            self._writer = pacsv.CSVWriter(str(self.path), table.schema)
        for reason, count in zip(*_value_counts(table["reason"]), strict=True):
            self.counts[reason] = self.counts.get(reason, 0) + count
        self._writer.write_table(table.select(self._schema.names).cast(self._schema))  # type: ignore[union-attr]
        self.rows += table.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _value_counts(values: pa.ChunkedArray) -> tuple[list[str], list[int]]:
    counts = pc.value_counts(values.combine_chunks())
    return counts.field("values").to_pylist(), counts.field("counts").to_pylist()


def _duplicates_as_rejected(dupes: pa.Table) -> pa.Table:
    text = pc.strftime(dupes["listen_time"], format="%Y-%m-%dT%H:%M:%S.%fZ")
    return pa.table(
        {
            "line": dupes["line"],
            "user_id": dupes["user_id"],
            "track_id": dupes["track_id"],
            "listen_time": text,
            "reason": pa.array(["duplicate_event"] * dupes.num_rows, pa.string()),
        }
    )


def _repeats_as_rejected(repeats: pa.Table, id_col: str) -> pa.Table:
    columns = {name: pc.cast(repeats[name], pa.string()) for name in repeats.schema.names}
    return pa.table(
        {
            "line": pa.nulls(repeats.num_rows, pa.int64()),
            **columns,
            "reason": pa.array([f"duplicate_{id_col}"] * repeats.num_rows, pa.string()),
        }
    )


def _upload(fs: Any, local: Path, target: str) -> None:
    with open(local, "rb") as src, fs.open_output_stream(target) as dst:
        while chunk := src.read(8 << 20):
            dst.write(chunk)
