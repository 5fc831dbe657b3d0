"""Exact de-duplication of a file's accepted events in bounded memory, by staging them locally.

Accepted rows are buffered up to `FLUSH_BYTES`, then flushed to one local Parquet file per
flush, with one row group per date (so a date is read back without reading the others, and a
file spanning years of dates makes large row groups, not thousands of files). `finish`
de-duplicates date by date: a date of at most `SPLIT_ROWS` rows in one go, a bigger one hour
by hour after splitting it. Each part is de-duplicated batch by batch first, so memory follows
the distinct events of a part, not its raw size (a file of one event repeated stays small).
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from playcount.core import parquet

EVENT_SCHEMA = parquet.EVENTS.append(pa.field("line", pa.int64()))  # staged: the lake's columns and the line
KEY = ["user_id", "track_id", "listen_time"]
_SORT = ["listen_time", "user_id", "track_id"]
FLUSH_BYTES = 32 << 20
SPLIT_ROWS = 2_000_000
READ_BATCH_ROWS = 1 << 20
_US_PER_HOUR = 3_600_000_000
_US_PER_DAY = 24 * _US_PER_HOUR
_EPOCH = dt.date(1970, 1, 1)

Duplicates = Callable[[pa.Table], None]


def _bucket(times: pa.ChunkedArray | pa.Array, unit_us: int) -> pa.Array:
    return pc.divide(pc.cast(times, pa.int64()), unit_us)


def _runs(table: pa.Table, keys: pa.Array) -> Iterator[tuple[int, pa.Table]]:
    """(key, rows) for each distinct key, after sorting the rows by key."""
    order = pc.sort_indices(keys)
    table, keys = table.take(order), keys.take(order)
    start = 0
    for chunk in pc.run_end_encode(keys).chunks:
        for end, key in zip(chunk.run_ends.to_pylist(), chunk.values.to_pylist(), strict=True):
            yield key, table.slice(start, end - start)
            start = end


class Staging:
    def __init__(self, root: str | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="stage-", dir=root))
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self._flushes = 0
        self._groups: dict[int, list[tuple[Path, int]]] = {}  # day number -> (file, row group)
        self._rows: dict[int, int] = {}

    def add(self, events: pa.Table) -> None:
        """Stage accepted events (EVENT_SCHEMA columns)."""
        if events.num_rows == 0:
            return
        self._buffer.append(events.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA))
        self._buffered += events.nbytes
        if self._buffered >= FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        table = pa.concat_tables(self._buffer)
        self._buffer, self._buffered = [], 0
        path = self.dir / f"flush-{self._flushes:05d}.parquet"
        self._flushes += 1
        with pq.ParquetWriter(path, EVENT_SCHEMA) as writer:
            for group, (day, rows) in enumerate(_runs(table, _bucket(table["listen_time"], _US_PER_DAY))):
                writer.write_table(rows, row_group_size=rows.num_rows)
                self._groups.setdefault(day, []).append((path, group))
                self._rows[day] = self._rows.get(day, 0) + rows.num_rows

    def finish(self, on_duplicates: Duplicates) -> Iterator[tuple[dt.date, Path]]:
        """Per date, in order: a Parquet file of its unique events (sorted by time, user, track).

        The removed repeats (later lines of an event already seen) go to `on_duplicates`.
        """
        self._flush()
        for day in sorted(self._groups):
            date = _EPOCH + dt.timedelta(days=day)
            out = self.dir / f"{date.isoformat()}.parquet"
            groups = self._groups.pop(day)
            with pq.ParquetWriter(out, parquet.EVENTS) as writer:
                parts = [_read_groups(groups)] if self._rows[day] <= SPLIT_ROWS else self._by_hour(date, groups)
                for part in parts:
                    writer.write_table(_unique_events(part, on_duplicates).drop_columns(["line"]))
            yield date, out

    def _by_hour(self, date: dt.date, groups: list[tuple[Path, int]]) -> Iterator[Iterable[pa.Table]]:
        """A big date, split into one local file per hour, then read back hour by hour."""
        writers: dict[int, pq.ParquetWriter] = {}
        paths: dict[int, Path] = {}
        try:
            for table in _read_groups(groups):
                for hour, rows in _runs(table, _bucket(table["listen_time"], _US_PER_HOUR)):
                    if hour not in writers:
                        paths[hour] = self.dir / f"{date.isoformat()}-{len(paths):02d}.parquet"
                        writers[hour] = pq.ParquetWriter(paths[hour], EVENT_SCHEMA)
                    writers[hour].write_table(rows)
        finally:
            for writer in writers.values():
                writer.close()
        for hour in sorted(paths):
            yield _read_file(paths[hour])
            paths[hour].unlink()

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _read_groups(groups: list[tuple[Path, int]]) -> Iterator[pa.Table]:
    for path, group in groups:
        yield pq.ParquetFile(path).read_row_group(group)


def _read_file(path: Path) -> Iterator[pa.Table]:
    for batch in pq.ParquetFile(path).iter_batches(batch_size=READ_BATCH_ROWS):
        yield pa.Table.from_batches([batch])


def _unique_events(parts: Iterable[pa.Table], on_duplicates: Duplicates) -> pa.Table:
    """The first occurrence of each event over `parts`; memory follows the distinct events."""
    uniques = []
    for part in parts:
        unique, repeats = dedupe(part)
        on_duplicates(repeats)
        uniques.append(unique)
    if len(uniques) == 1:
        return uniques[0]
    unique, repeats = dedupe(pa.concat_tables(uniques) if uniques else EVENT_SCHEMA.empty_table())
    on_duplicates(repeats)
    return unique


def dedupe(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(first occurrence of each event, sorted by time, user, track; the later repeats).

    One sort (the lake wants sorted files anyway), with the line last so the first occurrence
    comes first; a row equal to the one before it on every key is a repeat.
    """
    order = pc.sort_indices(table, sort_keys=[*((k, "ascending") for k in _SORT), ("line", "ascending")])
    rows = table.take(order)
    n = rows.num_rows
    if n < 2:
        return rows, rows.slice(0, 0)
    same: pa.Array | None = None
    for key in KEY:
        column = rows[key]
        equal = pc.equal(column.slice(1), column.slice(0, n - 1))
        same = equal if same is None else pc.and_(same, equal)
    repeat = pa.concat_arrays([pa.array([False]), pc.fill_null(same, False).combine_chunks()])
    return rows.filter(pc.invert(repeat)), rows.filter(repeat)
