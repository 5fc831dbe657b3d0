"""Re-judge quarantined stream rows against current metadata (`playcount replay-quarantine`).

Rows quarantined as `unknown_track_id` / `unknown_user_id` were judged against the metadata
known at that moment. Once the metadata knows those ids (a later songs.csv), a replay sends
them through the pipeline again:

1. each stream quarantine file `{rejected}{file_id}/rows.csv` without a replay marker is read
   (streaming), keeping its unknown-id rows;
2. a file takes part when at least one of those rows now has a known track and a known user;
   files whose rows are all still unknown are left as they are, for a later replay;
3. the unknown-id rows of the files taking part are uploaded as one stream file under
   `{streams}replayed/`: the validator judges it like any upload (recovered rows reach the
   lake and the KPIs; rows still unknown are quarantined again, in that file's own
   quarantine, which a later replay can pick up), so nothing is lost and nothing is judged
   here that the validator would judge differently;
4. then each of those files gets a marker `{rejected}{file_id}/replayed.json`, so no row is
   replayed twice.

The upload's key is derived from the files taking part and its content from theirs, so a
replay interrupted between 3 and 4 uploads the same object again (same ETag, so the validator
re-finishes it without counting twice). Even a repeated row would be an exact duplicate event,
which the runner counts once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from botocore.exceptions import ClientError
from pydantic import BaseModel

from playcount.core import aws, lake
from playcount.core.config import Settings
from playcount.core.errors import PlaycountError
from playcount.core.reports import FileReport
from playcount.core.s3 import is_missing

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

log = structlog.get_logger(__name__)

MARKER_FILE = "replayed.json"
COLUMNS = ("user_id", "track_id", "listen_time", "source_file_id", "source_line")


class ReplayUnavailable(PlaycountError):
    """This installation cannot replay (`playcount-ops` without its `replay` extra)."""


class ReplayResult(BaseModel):
    """What one replay did (counts are rows of quarantine files, not events)."""

    files_scanned: int = 0
    files_replayed: int = 0
    rows_replayed: int = 0
    rows_recovered: int = 0
    rows_still_unknown: int = 0
    replay_key: str | None = None


def replay_quarantine(settings: Settings, progress: Callable[[int, int], None] | None = None) -> ReplayResult:
    """Send quarantined unknown-id rows, now recoverable, through the pipeline again.

    `progress(done, total)` is called as quarantine files are read (a progress display).
    """
    s3 = aws.client(settings, "s3")
    try:
        from playcount.ops import rejudge  # pyarrow and numpy, only when a replay runs (see its docstring)
    except ImportError as exc:
        raise ReplayUnavailable(f"a replay needs {exc.name}: install the `replay` extra") from exc

    result = ReplayResult()
    fs, known = rejudge.known_now(settings, s3)
    if known is None:
        log.info("replay.no_metadata")
        return result
    work = Path(tempfile.mkdtemp(prefix="replay-", dir=_work_root(settings)))
    try:
        taking_part: list[tuple[str, int]] = []
        out = work / "replay.csv"
        with open(out, "wb") as sink:
            sink.write((",".join(f'"{c}"' for c in COLUMNS) + "\n").encode())
            pending = _pending_files(settings, s3)
            for fid in pending:
                result.files_scanned += 1
                if progress is not None:
                    progress(result.files_scanned, len(pending))
                part = work / f"{fid}.csv"
                rows, recovered = rejudge.collect(settings, fs, fid, known, part)
                if recovered == 0:
                    continue
                taking_part.append((fid, rows))
                result.rows_replayed += rows
                result.rows_recovered += recovered
                with open(part, "rb") as source:
                    shutil.copyfileobj(source, sink)
        result.rows_still_unknown = result.rows_replayed - result.rows_recovered
        if not taking_part:
            log.info("replay.nothing", files_scanned=result.files_scanned)
            return result
        digest = hashlib.sha256("\n".join(sorted(f for f, _ in taking_part)).encode()).hexdigest()[:24]
        result.replay_key = f"{lake.replay_prefix(settings)}{digest}.csv"
        s3.upload_file(str(out), settings.s3_bucket, result.replay_key)
        for fid, rows in taking_part:
            _mark(settings, s3, fid, result.replay_key, rows)
        result.files_replayed = len(taking_part)
        log.info("replay.sent", **result.model_dump())
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _work_root(settings: Settings) -> str:
    root = Path(settings.work_dir) / "replay"
    root.mkdir(parents=True, exist_ok=True)
    return str(root)


def _pending_files(settings: Settings, s3: S3Client) -> list[str]:
    """Ids of stream files with a quarantine and no replay marker, oldest report first."""
    with_rows, replayed = set(), set()
    prefix = settings.s3_rejected_prefix
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.s3_bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            fid, _, name = obj["Key"][len(prefix) :].partition("/")
            if name == lake.REJECTED_ROWS:
                with_rows.add(fid)
            elif name == MARKER_FILE:
                replayed.add(fid)
    reports = [r for r in (_report(settings, s3, fid) for fid in sorted(with_rows - replayed)) if r is not None]
    return [r.file_id for r in sorted(reports, key=lambda r: r.validated_at) if r.kind in ("streams", "replay")]


def _report(settings: Settings, s3: S3Client, fid: str) -> FileReport | None:
    try:
        body = s3.get_object(Bucket=settings.s3_bucket, Key=lake.report_key(settings, fid))["Body"].read()
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise
    return FileReport.model_validate_json(body)


def _mark(settings: Settings, s3: S3Client, fid: str, replay_key: str, rows: int) -> None:
    marker = {"replay_key": replay_key, "rows": rows, "replayed_at": dt.datetime.now(dt.UTC).isoformat()}
    s3.put_object(
        Bucket=settings.s3_bucket,
        Key=f"{lake.rejected_prefix(settings, fid)}{MARKER_FILE}",
        Body=json.dumps(marker, indent=1).encode(),
        ContentType="application/json",
    )
