"""The pyarrow side of a quarantine replay (`ops.replay`): which quarantined rows current metadata knows.

Imported only when a replay runs, so the query API, which serves the replay's route and
result model, imports no pyarrow until an operator asks for a replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from playcount.core import lake, parquet
from playcount.core.config import Settings
from playcount.core.idindex import IdLookup
from playcount.core.known import KnownIds

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

REPLAYABLE = ("unknown_track_id", "unknown_user_id")
_READ_BLOCK = 4 << 20


@dataclass(frozen=True)
class KnownNow:
    """The track and user ids the metadata knows now."""

    tracks: IdLookup
    users: IdLookup


def known_now(settings: Settings, s3: S3Client) -> tuple[Any, KnownNow | None]:
    """pyarrow's filesystem, and the ids known now (None before any metadata)."""
    fs = parquet.filesystem(settings)
    tracks = KnownIds(settings, s3, fs, "songs").current()
    users = KnownIds(settings, s3, fs, "users").current()
    return fs, (None if tracks is None or users is None else KnownNow(tracks, users))


def collect(settings: Settings, fs: Any, fid: str, known: KnownNow, out: Path) -> tuple[int, int]:
    """Write the unknown-id rows of one quarantine file to `out`; (rows, rows now recoverable)."""
    key = lake.rejected_rows_key(settings, fid)
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
                known.tracks.contains(pc.utf8_trim_whitespace(table["track_id"])),
                known.users.contains(pc.utf8_trim_whitespace(table["user_id"])),
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
