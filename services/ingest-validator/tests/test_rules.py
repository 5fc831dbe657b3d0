"""The stream row rules as pure functions (no emulator): timestamps, each row reason, and unknown ids,
which come from a lookup asked about the batch's distinct ids. (`test_streams.py` sends the same
cases through S3 and the whole validator.)"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from playcount.core.idindex import IdIndex
from playcount.validator.rules import judge_streams, parse_timestamps

pytestmark = pytest.mark.fast

UTC = dt.UTC
NOW = dt.datetime(2024, 6, 1, tzinfo=UTC)


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


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2024-03-03 10:00:00", dt.datetime(2024, 3, 3, 10, tzinfo=UTC)),
        ("2024-03-03T10:00:00", dt.datetime(2024, 3, 3, 10, tzinfo=UTC)),
        ("2024-03-03T10:00:00Z", dt.datetime(2024, 3, 3, 10, tzinfo=UTC)),
        ("2024-03-03t10:00:00z", dt.datetime(2024, 3, 3, 10, tzinfo=UTC)),
        ("2024-03-03 10:00:00.5", dt.datetime(2024, 3, 3, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2024-03-03T10:00:00.123456Z", dt.datetime(2024, 3, 3, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2024-03-03T12:00:00+02:00", dt.datetime(2024, 3, 3, 10, tzinfo=UTC)),
        ("2024-03-03T12:00:00.25+0200", dt.datetime(2024, 3, 3, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2024-03-02T23:30:00-05:00", dt.datetime(2024, 3, 3, 4, 30, tzinfo=UTC)),
        ("2024-03-04T01:00:00+02:00", dt.datetime(2024, 3, 3, 23, tzinfo=UTC)),
        ("2024-02-29 10:00:00", dt.datetime(2024, 2, 29, 10, tzinfo=UTC)),
        ("2000-02-29 10:00:00", dt.datetime(2000, 2, 29, 10, tzinfo=UTC)),
    ],
)
def test_a_timestamp_is_read_as_utc_microseconds(text, utc):
    assert parse_timestamps(pa.array([text])).to_pylist() == [utc]


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-03",
        "2024-03-03 10:00",
        "2024-03-03 24:00:00",
        "2023-02-29 10:00:00",
        "1900-02-29 10:00:00",
        "2024-04-31 10:00:00",
        "2024-13-01 10:00:00",
        "2024-03-03 10:00:00.1234567",
        "2024-03-03T10:00:00+02",
        "03/03/2024 10:00:00",
        "1709460000",
        "=NOW()",
        "",
    ],
)
def test_a_malformed_or_impossible_timestamp_is_null(text):
    assert parse_timestamps(pa.array([text])).to_pylist() == [None]


def test_an_impossible_date_nulls_only_its_own_row():
    # Feb 30 makes the batch's cast fail as a whole: the other rows must still be read
    got = parse_timestamps(pa.array(["2024-02-30 10:00:00", "2024-02-29 10:00:00", None, "2024-03-01 00:00:00Z"]))
    assert got.to_pylist() == [
        None,
        dt.datetime(2024, 2, 29, 10, tzinfo=UTC),
        None,
        dt.datetime(2024, 3, 1, tzinfo=UTC),
    ]


def test_each_row_gets_the_first_reason_it_meets_and_keeps_its_original_values():
    tracks, users = Counting(["t1", "t2"]), Counting(["u1", "u2"])
    rows = [
        ("u1", "t1", "2024-03-01 10:00:00"),
        (" u2 ", " t2 ", " 2024-03-01T10:00:00Z "),
        ("", "t1", "2024-03-01 10:00:00"),
        (None, "", "yesterday"),  # missing user wins over everything after it
        ("u1", "  ", "2024-03-01 10:00:00"),
        ("u1", "t1", ""),
        ("u" * 129, "t1", "2024-03-01 10:00:00"),
        ("u1", "t" * 129, "2024-03-01 10:00:00"),
        ("u1", "t1", "yesterday"),
        ("u1", "t1", "2024-02-30 10:00:00"),
        ("u1", "t1", "1999-12-31 23:59:59"),
        ("u1", "t1", "2000-01-01 00:00:00"),  # the earliest accepted
        ("u1", "t1", "2024-06-02 00:00:00"),  # now + 1 day: the latest accepted
        ("u1", "t1", "2024-06-02 00:00:01"),
        ("u9", "t9", "2024-03-01 10:00:00"),  # unknown track wins over unknown user
        ("u9", "t1", "2024-03-01 10:00:00"),
    ]
    judged = judge_streams(_batch(rows), 10, tracks, users, NOW)
    assert judged.accepted.to_pylist() == [
        {"user_id": "u1", "track_id": "t1", "listen_time": dt.datetime(2024, 3, 1, 10, tzinfo=UTC), "line": 10},
        {"user_id": "u2", "track_id": "t2", "listen_time": dt.datetime(2024, 3, 1, 10, tzinfo=UTC), "line": 11},
        {"user_id": "u1", "track_id": "t1", "listen_time": dt.datetime(2000, 1, 1, tzinfo=UTC), "line": 21},
        {"user_id": "u1", "track_id": "t1", "listen_time": dt.datetime(2024, 6, 2, tzinfo=UTC), "line": 22},
    ]
    assert dict(zip(judged.rejected["line"].to_pylist(), judged.rejected["reason"].to_pylist(), strict=True)) == {
        12: "missing_user_id",
        13: "missing_user_id",
        14: "missing_track_id",
        15: "missing_listen_time",
        16: "bad_user_id",
        17: "bad_track_id",
        18: "bad_listen_time",
        19: "bad_listen_time",
        20: "listen_time_out_of_range",
        23: "listen_time_out_of_range",
        24: "unknown_track_id",
        25: "unknown_user_id",
    }
    rejected = {r["line"]: r for r in judged.rejected.to_pylist()}
    assert (rejected[14]["track_id"], rejected[18]["listen_time"]) == ("  ", "yesterday")
