"""What a refused row or file leaves behind, under `rejected/{file_id}/`.

Rows: `Quarantine` streams the quarantined rows of one file to a local CSV (their values, line,
reason and raw text); `store_rows` uploads it to `rows.csv` once the file is judged. Every table
written is conformed to one schema per file (`line`, the file's columns as strings, `reason`,
`raw`), so rows judged by different rules land in the same CSV. `raw` is only set for records
that could not be split into fields (`malformed_row`).

A whole file (`reject_file`): a copy of the version the event named goes to `original/{name}`
(`CopySourceIfMatch`), then the rejected report to `report.json`. Both keys come from the file
id, so a redelivery rewrites the same objects; the original itself is deleted only later,
when the file is finished (`finishing.archive`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import structlog

from playcount.core import lake
from playcount.core.config import Settings
from playcount.core.messages import S3ObjectRef
from playcount.core.reports import FileReport
from playcount.validator import storage
from playcount.validator.csvinput import FileRejected

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

    from playcount.core.aws import CopyIfMatch

log = structlog.get_logger(__name__)

MALFORMED = "malformed_row"


def schema_for(columns: tuple[str, ...]) -> pa.Schema:
    return pa.schema(
        [("line", pa.int64()), *((c, pa.string()) for c in columns), ("reason", pa.string()), ("raw", pa.string())]
    )


class Quarantine:
    """The quarantined rows of one file, written to a local CSV as they are judged."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.schema = schema
        self.rows = 0
        self.counts: dict[str, int] = {}
        self._writer: pacsv.CSVWriter | None = None

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self._writer is None:
            self._writer = pacsv.CSVWriter(str(self.path), self.schema)
        counts = pc.value_counts(table["reason"].combine_chunks())
        for reason, count in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True):
            self.counts[reason] = self.counts.get(reason, 0) + count
        self._writer.write_table(self._conform(table))
        self.rows += table.num_rows

    def write_malformed(self, raw_rows: list[str]) -> int:
        """Quarantine records that could not be split into fields; returns how many."""
        if raw_rows:
            self.write(
                pa.table({"raw": pa.array(raw_rows, pa.string()), "reason": pa.repeat(MALFORMED, len(raw_rows))})
            )
        return len(raw_rows)

    def _conform(self, table: pa.Table) -> pa.Table:
        names = set(table.schema.names)
        return pa.table(
            [
                pc.cast(table[f.name], f.type) if f.name in names else pa.nulls(table.num_rows, f.type)
                for f in self.schema
            ],
            schema=self.schema,
        )

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def store_rows(settings: Settings, fs: Any, fid: str, quarantine: Quarantine) -> str | None:
    """Close the local CSV and upload it; its key, or None when no row was quarantined."""
    quarantine.close()
    if not quarantine.rows:
        return None
    key = lake.rejected_rows_key(settings, fid)
    storage.upload(fs, quarantine.path, lake.path(settings, key))
    return key


def reject_file(
    settings: Settings, s3: S3Client, fid: str, ref: S3ObjectRef, base: dict[str, Any], rejected: FileRejected
) -> FileReport:
    """Keep a copy of the refused file and its report under `rejected/`; returns the report."""
    prefix = lake.rejected_prefix(settings, fid)
    original = f"{prefix}original/{ref.key.rsplit('/', 1)[-1] or 'object'}"
    copy_kwargs: CopyIfMatch = {"CopySourceIfMatch": ref.etag} if ref.etag else {}
    s3.copy_object(
        Bucket=settings.s3_bucket,
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
    storage.put_json(settings, s3, f"{prefix}report.json", report.model_dump(mode="json"))
    log.warning("object.rejected", reason=rejected.reason, detail=rejected.detail)
    return report
