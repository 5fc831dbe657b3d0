"""De-duplication of staged events: exact across flushes and hour splits, one sorted file per date."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from playcount.validator import dedupe
from playcount.validator.dedupe import EVENT_SCHEMA, Staging

pytestmark = pytest.mark.fast

UTC = dt.UTC


def _events(rng: np.random.Generator, n: int, first_line: int, days: int) -> pa.Table:
    start = int(dt.datetime(2024, 8, 1, tzinfo=UTC).timestamp()) * 1_000_000
    seconds = rng.integers(0, days * 86_400, n) * 1_000_000
    return pa.table(
        {
            "user_id": [f"u{i}" for i in rng.integers(0, 50, n)],
            "track_id": [f"t{i}" for i in rng.integers(0, 50, n)],
            "listen_time": pa.array(start + seconds, pa.timestamp("us", tz="UTC")),
            "line": pa.array(np.arange(first_line, first_line + n), pa.int64()),
        },
        schema=EVENT_SCHEMA,
    )


def _stage(tmp_path, batches):
    store, repeats, days = Staging(str(tmp_path)), [], {}
    try:
        for batch in batches:
            store.add(batch)
        for day, path in store.finish(on_duplicates=repeats.append):
            days[day] = pq.read_table(path)
    finally:
        store.close()
    return days, pa.concat_tables(repeats) if repeats else EVENT_SCHEMA.empty_table()


@pytest.mark.parametrize(("flush_bytes", "split_rows"), [(1 << 30, 10**9), (20_000, 10**9), (20_000, 500)])
def test_exactly_the_first_occurrence_of_each_event_is_kept(tmp_path, monkeypatch, flush_bytes, split_rows):
    # GIVEN 20 batches with many repeats (50 users x 50 tracks over 3 days, at second precision)
    monkeypatch.setattr(dedupe, "FLUSH_BYTES", flush_bytes)
    monkeypatch.setattr(dedupe, "SPLIT_ROWS", split_rows)
    rng = np.random.default_rng(7)
    batches = [_events(rng, 2000, 1 + i * 2000, days=3) for i in range(20)]
    batches.append(batches[3].set_column(3, "line", pa.array(np.arange(40_001, 42_001), pa.int64())))
    # WHEN staged (in one flush, in many flushes, or split by hour)
    days, repeats = _stage(tmp_path, batches)
    # THEN each date holds its distinct events once, sorted, and every other row is a repeat
    whole = pa.concat_tables(batches)
    expected = whole.group_by(dedupe.KEY).aggregate([("line", "min")])
    got = pa.concat_tables(days.values())
    assert got.num_rows == expected.num_rows and got.num_rows + repeats.num_rows == whole.num_rows
    assert sorted(repeats["line"].to_pylist()) == sorted(
        set(whole["line"].to_pylist()) - set(expected["line_min"].to_pylist())
    )
    for day, table in days.items():
        times = table["listen_time"].to_pylist()
        assert times == sorted(times) and {t.date() for t in times} == {day}
        assert table.schema.names == ["user_id", "track_id", "listen_time"]


def test_one_event_repeated_many_times_stays_small(tmp_path, monkeypatch):
    monkeypatch.setattr(dedupe, "FLUSH_BYTES", 50_000)
    monkeypatch.setattr(dedupe, "SPLIT_ROWS", 1000)
    one = _events(np.random.default_rng(1), 1, 1, days=1).take([0] * 5000)
    lines = [pa.array(np.arange(1 + i * 5000, 1 + (i + 1) * 5000), pa.int64()) for i in range(10)]
    batches = [one.set_column(3, "line", numbers) for numbers in lines]
    days, repeats = _stage(tmp_path, batches)
    (table,) = days.values()
    assert table.num_rows == 1 and repeats.num_rows == 49_999


def test_a_file_spanning_years_makes_few_local_files(tmp_path, monkeypatch):
    monkeypatch.setattr(dedupe, "FLUSH_BYTES", 1 << 30)
    events = _events(np.random.default_rng(2), 5_000, 1, days=730)
    store = Staging(str(tmp_path))
    try:
        store.add(events)
        store._flush()
        assert len(list(store.dir.iterdir())) == 1  # one flush file, one row group per date
        produced = sum(1 for _ in store.finish(on_duplicates=lambda t: None))
    finally:
        store.close()
    assert produced == len({t.date() for t in events["listen_time"].to_pylist()})
