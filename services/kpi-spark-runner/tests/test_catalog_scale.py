"""A catalog far larger than the batch: only the batch's ids take part, and segments merge newest-first.

The job's own counters (`Computed.taking_part`) say how many catalog rows joined the batch;
they must be bounded by the batch's distinct ids, whatever the size of the catalog.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from playcount.core import snapshots
from playcount.devstack import generate
from playcount.runner import compute
from tests.support import oracle

pytestmark = pytest.mark.spark
DAY = dt.date(2025, 6, 24)


def test_a_large_catalog_takes_part_only_through_the_batchs_ids(lake_state, make_runner, h):
    # GIVEN a catalog of 300k users and 100k tracks, and one 5k-row file drawn from it
    songs_t, users_t, cat = generate.dataset(seed=12, n_tracks=100_000, n_users=300_000)
    lake_state.catalog("songs", songs_t)
    lake_state.catalog("users", users_t)
    table = generate.streams_table(np.random.default_rng(5), cat, 5000, [DAY])
    events = [(r["user_id"], r["track_id"], oracle.parse_time(r["listen_time"])) for r in table.to_pylist()]
    lake_state.events("f1", events)

    # WHEN the runner computes the date
    runner = make_runner()
    results = runner.recompute([h.validated("streams", [DAY], "f1")])

    # THEN the KPIs are exact
    songs = oracle.metadata_from_csv(songs_t.to_pylist(), "track_id")
    users = oracle.metadata_from_csv(users_t.to_pylist(), "user_id")
    oracle.assert_matches(results, oracle.kpis([(u, t, w.isoformat()) for u, t, w in events], songs, users))
    # AND only the rows of the batch's distinct ids took part, by the job's own counters
    assert runner.last_job is not None
    part = runner.last_job.taking_part
    assert part.distinct_tracks == len({t for _, t, _ in events}) < songs_t.num_rows
    assert part.distinct_users == len({u for u, _, _ in events}) < users_t.num_rows
    assert part.song_rows == part.distinct_tracks  # every track of the file is in the catalog, once
    assert part.user_rows == part.distinct_users


def test_the_newest_segment_wins_and_unknown_ids_keep_their_events(lake_state, make_runner, h, settings):
    # GIVEN a base catalog, then a correction segment (t2 changes genre, u2 changes age) and a
    # second correction of t2 again: three segments, newest last
    base_songs = {
        "t1": {"track_name": "One", "artists": "Abe", "track_genre": "rock", "duration_ms": 1000},
        "t2": {"track_name": "Two", "artists": "Bea", "track_genre": "rock", "duration_ms": 2000},
        "t3": {"track_name": "Three", "artists": "Cat", "track_genre": "jazz", "duration_ms": 3000},
    }
    users = {"u1": {"user_age": 17}, "u2": {"user_age": 30}, "u3": {"user_age": 70}}
    lake_state.metadata(base_songs, users)
    fixed_once = {"t2": {**base_songs["t2"], "track_genre": "pop", "duration_ms": 2500}}
    fixed_twice = {"t2": {**base_songs["t2"], "track_genre": "música mexicana", "duration_ms": 2600}}
    _append(lake_state, settings, "songs", _songs_table(fixed_once))
    _append(lake_state, settings, "users", pa.table({"user_id": ["u2"], "user_age": pa.array([16], pa.int64())}))
    _append(lake_state, settings, "songs", _songs_table(fixed_twice))
    at = dt.datetime(2025, 6, 24, 9, 0, tzinfo=dt.UTC)
    plays = [("u1", "t1"), ("u2", "t2"), ("u3", "t2"), ("u3", "t3"), ("u9", "t1"), ("u1", "t9")]  # u9, t9 unknown
    events = [(u, t, at + dt.timedelta(seconds=i)) for i, (u, t) in enumerate(plays)]
    lake_state.events("f1", events)

    # WHEN the runner computes the date
    runner = make_runner()
    results = runner.recompute([h.validated("streams", [DAY], "f1")])

    # THEN each id has its newest row, and the unknown ids count in the hours only
    day = results[0]
    genres = {g.genre: g for g in day.genres}
    assert set(genres) == {"rock", "jazz", "música mexicana"}
    assert (genres["música mexicana"].listen_count, genres["música mexicana"].total_listening_time_ms) == (2, 5200)
    assert genres["rock"].listen_count == 2  # t1 by u1 and by the unknown u9
    assert day.hours[0].listen_count == 6
    assert day.hours[0].most_engaged_age_group == "<18"  # u1 (17) and u2 (16 after the fix): 3 listens
    assert runner.last_job is not None
    assert (runner.last_job.taking_part.song_rows, runner.last_job.taking_part.user_rows) == (3, 3)


def _songs_table(songs: dict[str, dict[str, object]]) -> pa.Table:
    return pa.table(
        {
            "track_id": list(songs),
            **{c: [s[c] for s in songs.values()] for c in ("track_name", "artists", "track_genre")},
            "duration_ms": pa.array([s["duration_ms"] for s in songs.values()], pa.int64()),
        }
    )


def _append(lake_state, settings, kind: snapshots.Kind, table: pa.Table) -> None:
    """One more segment on top of the current ones, as the validator's upsert writes it."""
    current = snapshots.read_manifest(settings, lake_state.s3, kind)
    snapshots.upsert(settings, lake_state.s3, lake_state.fs, current, "fix", table)


@pytest.mark.parametrize(
    ("input_bytes", "catalog_rows", "layout"),
    [
        (0, 0, "single"),
        (0, compute.SCAN_IN_PLACE_ROWS + 1, "single"),  # the batch's ids broadcast into the catalog scan
        (64 << 20, 0, "broadcast"),
        (64 << 20, compute.BROADCAST_ROWS + 1, "shuffle"),
    ],
)
def test_every_layout_of_the_job_matches_the_oracle(lake_state, make_runner, h, input_bytes, catalog_rows, layout):
    # GIVEN generated files over two dates, with a correction segment on top of the catalog
    songs_t, users_t, cat = generate.dataset(seed=31, n_tracks=300, n_users=200)
    lake_state.catalog("songs", songs_t)
    lake_state.catalog("users", users_t)
    fixed = songs_t.slice(0, 40).set_column(songs_t.schema.get_field_index("track_genre"), "track_genre",
                                            pa.array(["forró"] * 40))  # fmt: skip
    _append(lake_state, lake_state.settings, "songs", fixed)
    rng = np.random.default_rng(8)
    days = [DAY, DAY + dt.timedelta(days=1)]
    table = generate.streams_table(rng, cat, 3000, days)
    events = [(r["user_id"], r["track_id"], oracle.parse_time(r["listen_time"])) for r in table.to_pylist()]
    lake_state.events("f1", events + events[:100])  # repeats: de-duplicated
    runner = make_runner()
    # WHEN the job runs in the layout a batch of `input_bytes` and a catalog of `catalog_rows` get
    metadata = dataclasses.replace(runner.catalog.current(), song_rows=catalog_rows, user_rows=catalog_rows)
    inputs = dataclasses.replace(runner._inputs(days), input_bytes=input_bytes)
    job = compute.compute(runner.spark, inputs, metadata, days, 1, dt.datetime.now(dt.UTC))
    # THEN it took that layout, and its KPIs are exact
    assert job.plan is not None and job.plan.layout == layout
    songs = oracle.metadata_from_csv(fixed.to_pylist() + songs_t.to_pylist(), "track_id")  # first row wins
    users = oracle.metadata_from_csv(users_t.to_pylist(), "user_id")
    assert any(g.genre == "forró" for d in job.days for g in d.genres)
    oracle.assert_matches(job.days, oracle.kpis([(u, t, w.isoformat()) for u, t, w in events], songs, users))
