"""The stream row rules on their own: unknown ids come from a lookup asked about the batch's distinct ids."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from playcount.core.idindex import IdIndex
from playcount.validator.rules import judge_streams

NOW = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)


class Counting:
    """An IdLookup that records the values it was asked about."""

    def __init__(self, known: list[str]) -> None:
        self.index = IdIndex.build([pa.array(known)])
        self.asked: list[str | None] = []

    def contains(self, values):
        self.asked += values.to_pylist()
        return self.index.contains(values)


def _batch(rows):
    return pa.RecordBatch.from_pylist(
        [dict(zip(("user_id", "track_id", "listen_time"), r, strict=True)) for r in rows],
        schema=pa.schema([(c, pa.string()) for c in ("user_id", "track_id", "listen_time")]),
    )


def test_unknown_ids_are_judged_by_the_lookup_of_plausible_ids_only():
    tracks, users = Counting(["t1", "t2"]), Counting(["u1"])
    batch = _batch(
        [
            ("u1", " t1 ", "2024-05-01 10:00:00"),
            ("u1", "t2", "2024-05-01 10:00:00"),
            ("u2", "t1", "2024-05-01 10:00:00"),
            ("u1", "t9", "2024-05-01 10:00:00"),
            ("u1", "t" * 129, "2024-05-01 10:00:00"),
            ("u1", "", "2024-05-01 10:00:00"),
        ]
    )
    judged = judge_streams(batch, 1, tracks, users, NOW)
    assert judged.accepted["line"].to_pylist() == [1, 2]
    reasons = ["unknown_user_id", "unknown_track_id", "bad_track_id", "missing_track_id"]
    assert judged.rejected["reason"].to_pylist() == reasons
    # ids that fail an earlier rule are never looked up (a 10k-character id costs nothing)
    assert {v for v in tracks.asked if v is not None} == {"t1", "t2", "t9"}


def test_without_a_catalog_every_id_is_unknown():
    judged = judge_streams(_batch([("u1", "t1", "2024-05-01 10:00:00")]), 1, None, None, NOW)
    assert judged.rejected["reason"].to_pylist() == ["unknown_track_id"]
