"""Local staging of accepted events, sharded by (date, hour) so de-duplication runs in bounded memory.

Accepted rows are appended to one Parquet file per shard while the CSV streams by; `finish`
removes exact duplicate events shard by shard and yields one table per date.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

EVENT_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("track_id", pa.string()),
        ("listen_time", pa.timestamp("us", tz="UTC")),
        ("line", pa.int64()),
    ]
)
KEY = ["user_id", "track_id", "listen_time"]


class Staging:
    def __init__(self, root: str | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="stage-", dir=root))
        self._writers: dict[tuple[dt.date, int], pq.ParquetWriter] = {}

    def add(self, events: pa.Table) -> None:
        if events.num_rows == 0:
            return
        hours = pc.floor_temporal(events["listen_time"], unit="hour")
        events = events.append_column("_hour", hours)
        for hour in pc.unique(hours).to_pylist():
            shard = events.filter(pc.equal(events["_hour"], pa.scalar(hour, hours.type))).drop_columns(["_hour"])
            key = (hour.date(), hour.hour)
            writer = self._writers.get(key)
            if writer is None:
                path = self.dir / f"{key[0].isoformat()}-{key[1]:02d}.parquet"
                writer = self._writers[key] = pq.ParquetWriter(path, EVENT_SCHEMA)
            writer.write_table(shard.cast(EVENT_SCHEMA))

    def dates(self) -> list[dt.date]:
        return sorted({d for d, _ in self._writers})

    def finish(self) -> Iterator[tuple[dt.date, Path, pa.Table]]:
        """Per date: the path of its de-duplicated Parquet file and the duplicate rows removed."""
        for writer in self._writers.values():
            writer.close()
        for day in self.dates():
            out = self.dir / f"{day.isoformat()}.parquet"
            duplicates: list[pa.Table] = []
            with pq.ParquetWriter(out, EVENT_SCHEMA.remove(3)) as day_writer:
                for hour in range(24):
                    path = self.dir / f"{day.isoformat()}-{hour:02d}.parquet"
                    if not path.exists():
                        continue
                    unique, dupes = dedupe(pq.read_table(path))
                    day_writer.write_table(unique.drop_columns(["line"]))
                    duplicates.append(dupes)
                    path.unlink()
            yield day, out, pa.concat_tables(duplicates) if duplicates else EVENT_SCHEMA.empty_table()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def dedupe(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(first occurrence of each event, sorted by time; the later repeats) of a shard."""
    firsts = table.group_by(KEY, use_threads=False).aggregate([("line", "min")])
    keep = pc.is_in(table["line"], value_set=firsts["line_min"])
    unique = table.filter(keep).sort_by(
        [("listen_time", "ascending"), ("user_id", "ascending"), ("track_id", "ascending")]
    )
    return unique, table.filter(pc.invert(keep))
