"""Where things live in the bucket: one function per kind of object (plain strings, no pyarrow).

{validated}streams/listen_date=YYYY-MM-DD/{file_id}.parquet   clean events, per file and date
{validated}ids/{column}/listen_date=YYYY-MM-DD/{file_id}.parquet  the distinct ids of those events
{validated}metadata/manifests/{kind}.json, {kind}/seg-*.parquet  the metadata catalog (core.snapshots)
{transformed}date=YYYY-MM-DD/r{10^20-1-version:020d}.json     one day's KPIs at a version (newest first)
{rejected}{file_id}/report.json | rows.csv | original/...     what was refused, and why
{processing_metadata}files/{file_id}.json                     the validation report of a file
{archive}{original key}                                       processed originals
{raw}replayed/{digest}.csv                                       quarantined rows sent through again (ops.replay)

The lake's columns and pyarrow's S3 filesystem are in `core.parquet`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

from playcount.core.config import Settings


def file_id(key: str, etag: str | None) -> str:
    """A deterministic id for one version of one object: redelivery maps to the same id."""
    return hashlib.sha256(f"{key}\0{etag or ''}".encode()).hexdigest()[:24]


def streams_root(s: Settings) -> str:
    return f"{s.s3_validated_prefix}streams/"


def date_partition(s: Settings, day: dt.date) -> str:
    return f"{streams_root(s)}listen_date={day.isoformat()}/"


def events_key(s: Settings, day: dt.date, fid: str) -> str:
    return f"{date_partition(s, day)}{fid}.parquet"


def id_index_root(s: Settings, column: str) -> str:
    """Outside `streams/`: a reader of a date partition never meets these files."""
    return f"{s.s3_validated_prefix}ids/{column}/"


def id_index_key(s: Settings, column: str, day: dt.date, fid: str) -> str:
    return f"{id_index_root(s, column)}listen_date={day.isoformat()}/{fid}.parquet"


def results_prefix(s: Settings, day: dt.date) -> str:
    return f"{s.s3_transformed_prefix}date={day.isoformat()}/"


# a result's key holds its version counted down from here, zero-padded: S3 lists keys in
# ascending order, so the first key under a date's prefix is its newest result
_RESULT_KEY_TOP = 10**20 - 1
_RESULT_KEY = re.compile(r"/r(\d{20})\.json$")


def result_key(s: Settings, day: dt.date, version: int) -> str:
    if not 0 <= version <= _RESULT_KEY_TOP:
        raise ValueError(f"version {version} does not fit a result key")
    return f"{results_prefix(s, day)}r{_RESULT_KEY_TOP - version:020d}.json"


def result_version(key: str) -> int | None:
    """The version a result key names (None for any other key)."""
    found = _RESULT_KEY.search(key)
    return _RESULT_KEY_TOP - int(found.group(1)) if found else None


REPLAY_DIR = "replayed/"


def replay_prefix(s: Settings) -> str:
    """Where replays are uploaded (inside the streams prefix, so the normal pipeline judges them)."""
    return f"{s.s3_raw_data_prefix}{REPLAY_DIR}"


def report_key(s: Settings, fid: str) -> str:
    return f"{s.s3_processing_metadata_prefix}files/{fid}.json"


def rejected_prefix(s: Settings, fid: str) -> str:
    return f"{s.s3_rejected_prefix}{fid}/"


REJECTED_ROWS = "rows.csv"


def rejected_rows_key(s: Settings, fid: str) -> str:
    """Where the quarantined rows of file `fid` are stored (written by the validator, replayed by ops)."""
    return f"{rejected_prefix(s, fid)}{REJECTED_ROWS}"


def archive_key(s: Settings, key: str) -> str:
    return f"{s.s3_archive_prefix}{key}"


def path(s: Settings, key: str) -> str:
    """A key as a pyarrow filesystem path."""
    return f"{s.s3_bucket}/{key}"
