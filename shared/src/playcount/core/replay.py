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
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import structlog
from botocore.exceptions import ClientError
from pydantic import BaseModel

from playcount.core import aws, lake
from playcount.core.config import Settings
from playcount.core.idindex import IdLookup
from playcount.core.known import KnownIds
from playcount.core.reports import FileReport

log = structlog.get_logger(__name__)

REPLAY_DIR = "replayed/"
REPLAYABLE = ("unknown_track_id", "unknown_user_id")
ROWS_FILE = "rows.csv"
MARKER_FILE = "replayed.json"
COLUMNS = ("user_id", "track_id", "listen_time", "source_file_id", "source_line")
_READ_BLOCK = 4 << 20


class ReplayResult(BaseModel):
    """What one replay did (counts are rows of quarantine files, not events)."""

    files_scanned: int = 0
    files_replayed: int = 0
    rows_replayed: int = 0
    rows_recovered: int = 0
    rows_still_unknown: int = 0
    replay_key: str | None = None


def replay_prefix(settings: Settings) -> str:
    """Where replays are uploaded (inside the streams prefix, so the normal pipeline judges them)."""
    return f"{settings.s3_raw_data_prefix}{REPLAY_DIR}"


def replay_quarantine(settings: Settings) -> ReplayResult:
    """Send quarantined unknown-id rows, now recoverable, through the pipeline again."""
    s3 = aws.client(settings, "s3")
    fs = lake.filesystem(settings)
    result = ReplayResult()
    known_tracks = KnownIds(settings, s3, fs, "songs").current()
    known_users = KnownIds(settings, s3, fs, "users").current()
    if known_tracks is None or known_users is None:
        log.info("replay.no_metadata")
        return result
    work = Path(tempfile.mkdtemp(prefix="replay-", dir=_work_root(settings)))
    try:
        taking_part: list[tuple[str, int]] = []
        out = work / "replay.csv"
        with open(out, "wb") as sink:
            sink.write((",".join(f'"{c}"' for c in COLUMNS) + "\n").encode())
            for fid in _pending_files(settings, s3):
                result.files_scanned += 1
                part = work / f"{fid}.csv"
                rows, recovered = _collect(settings, fs, fid, known_tracks, known_users, part)
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
        result.replay_key = f"{replay_prefix(settings)}{digest}.csv"
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


def _pending_files(settings: Settings, s3: Any) -> list[str]:
    """Ids of stream files with a quarantine and no replay marker, oldest report first."""
    with_rows, replayed = set(), set()
    prefix = settings.s3_rejected_prefix
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.s3_bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            fid, _, name = obj["Key"][len(prefix) :].partition("/")
            if name == ROWS_FILE:
                with_rows.add(fid)
            elif name == MARKER_FILE:
                replayed.add(fid)
    reports = [r for r in (_report(settings, s3, fid) for fid in sorted(with_rows - replayed)) if r is not None]
    return [r.file_id for r in sorted(reports, key=lambda r: r.validated_at) if r.kind in ("streams", "replay")]


def _report(settings: Settings, s3: Any, fid: str) -> FileReport | None:
    try:
        body = s3.get_object(Bucket=settings.s3_bucket, Key=lake.report_key(settings, fid))["Body"].read()
    except ClientError as exc:
        if aws.is_missing(exc):
            return None
        raise
    return FileReport.model_validate_json(body)


def _collect(
    settings: Settings, fs: Any, fid: str, known_tracks: IdLookup, known_users: IdLookup, out: Path
) -> tuple[int, int]:
    """Write the unknown-id rows of one quarantine file to `out`; (rows, rows now recoverable)."""
    key = f"{lake.rejected_prefix(settings, fid)}{ROWS_FILE}"
    names = ("line", "user_id", "track_id", "listen_time", "reason")
    rows = recovered = 0
    no_header = pacsv.WriteOptions(include_header=False)
    with fs.open_input_stream(lake.path(settings, key)) as raw, open(out, "wb") as sink:
        reader = pacsv.open_csv(
            raw,
            read_options=pacsv.ReadOptions(block_size=_READ_BLOCK),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                include_columns=list(names),
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
            ),
        )
        for batch in reader:
            table = pa.Table.from_batches([batch])
            table = table.filter(pc.is_in(table["reason"], value_set=pa.array(REPLAYABLE)))
            if table.num_rows == 0:
                continue
            now_known = pc.and_(
                known_tracks.contains(pc.utf8_trim_whitespace(table["track_id"])),
                known_users.contains(pc.utf8_trim_whitespace(table["user_id"])),
            )
            recovered += pc.sum(pc.cast(now_known, pa.int64())).as_py() or 0
            rows += table.num_rows
            replayed = pa.table(
                {
                    "user_id": table["user_id"],
                    "track_id": table["track_id"],
                    "listen_time": table["listen_time"],
                    "source_file_id": pa.repeat(fid, table.num_rows),
                    "source_line": table["line"],
                }
            )
            pacsv.write_csv(replayed, sink, write_options=no_header)
    return rows, recovered


def _mark(settings: Settings, s3: Any, fid: str, replay_key: str, rows: int) -> None:
    marker = {"replay_key": replay_key, "rows": rows, "replayed_at": dt.datetime.now(dt.UTC).isoformat()}
    s3.put_object(
        Bucket=settings.s3_bucket,
        Key=f"{lake.rejected_prefix(settings, fid)}{MARKER_FILE}",
        Body=json.dumps(marker, indent=1).encode(),
        ContentType="application/json",
    )
