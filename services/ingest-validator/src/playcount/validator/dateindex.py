"""Which dates hold events of given ids, without reading the events: a small index per file and date.

When the validator writes a file's events of one date, it also writes the distinct user ids and
track ids of those events, sorted, one Parquet file per column:
`{validated}ids/{column}/listen_date=D/{file_id}.parquet` (outside `streams/`, so a reader of
the date partition never meets them). The keys come from the file id, like the events', so a
redelivery or a replay rewrites the same objects, and every event in the lake has its ids in
the index of its file and date.

`dates_with(column, ids)` lists the column's index and, date by date, reads only the row groups
whose statistics can hold one of `ids`; a date is affected as soon as one file of it holds one.
The answer is exact: a date is returned if and only if one of its events has one of the ids.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from playcount.core import lake
from playcount.core.config import Settings
from playcount.core.idindex import IdIndex
from playcount.core.snapshots import row_groups_holding, sorted_unique

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

COLUMNS = ("user_id", "track_id")
SCHEMA = pa.schema([("id", pa.string())])
GROUP_ROWS = 16 * 1024  # small groups: statistics then rule out most of a big file
_READ_ROWS = 1 << 20
_COMPACT_ROWS = 1 << 20  # distinct values gathered from batches are re-deduplicated past this
_THREADS = 8


def distinct_ids(events: Path) -> dict[str, pa.Array]:
    """The distinct, sorted values of each id column of a local events file, read in batches."""
    seen: dict[str, list[pa.Array]] = {c: [] for c in COLUMNS}
    held = dict.fromkeys(COLUMNS, 0)
    for batch in pq.ParquetFile(events).iter_batches(batch_size=_READ_ROWS, columns=list(COLUMNS)):
        for column in COLUMNS:
            unique = pc.unique(batch.column(column))
            seen[column].append(unique)
            held[column] += len(unique)
            if held[column] > _COMPACT_ROWS:
                seen[column] = [pc.unique(pa.concat_arrays(seen[column]))]
                held[column] = len(seen[column][0])
    return {c: sorted_unique(pa.chunked_array(seen[c], pa.string())) for c in COLUMNS}


def write(settings: Settings, fs: Any, day: dt.date, fid: str, events: Path) -> None:
    """Index the events of file `fid` on `day` (the local file about to be, or just, uploaded)."""
    for column, ids in distinct_ids(events).items():
        path = lake.path(settings, lake.id_index_key(settings, column, day, fid))
        pq.write_table(pa.table({"id": ids}, schema=SCHEMA), path, filesystem=fs, row_group_size=GROUP_ROWS)


def dates_with(settings: Settings, s3: S3Client, fs: Any, column: str, ids: Iterable[str] | pa.Array) -> list[dt.date]:
    """The dates whose events hold one of `ids` in `column` (user_id or track_id), sorted."""
    wanted = sorted_unique(ids if isinstance(ids, pa.Array) else pa.array(list(ids), pa.string()))
    if len(wanted) == 0:
        return []
    lookup = IdIndex.build([wanted])  # each index value is looked up once, however many ids changed
    by_date = _index_files(settings, s3, column)

    def affected(day: dt.date) -> bool:
        return any(_holds(fs, lake.path(settings, key), wanted, lookup) for key in by_date[day])

    with ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="dateindex") as pool:
        days = sorted(by_date)
        return [day for day, hit in zip(days, pool.map(affected, days), strict=True) if hit]


def _index_files(settings: Settings, s3: S3Client, column: str) -> dict[dt.date, list[str]]:
    root = lake.id_index_root(settings, column)
    by_date: dict[dt.date, list[str]] = defaultdict(list)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.s3_bucket, Prefix=root):
        for obj in page.get("Contents", []):
            folder, _, name = obj["Key"][len(root) :].partition("/")
            if folder.startswith("listen_date=") and name.endswith(".parquet"):
                by_date[dt.date.fromisoformat(folder.removeprefix("listen_date="))].append(obj["Key"])
    return by_date


def _holds(fs: Any, path: str, wanted: pa.Array, lookup: IdIndex) -> bool:
    parquet = pq.ParquetFile(path, filesystem=fs)
    for group, _ in row_groups_holding(parquet, "id", wanted):
        values = parquet.read_row_group(group, columns=["id"])["id"].combine_chunks()
        if lookup.lookup(values).any():
            return True
    return False
