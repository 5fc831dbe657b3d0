"""The runner's KPIs, field by field, against an independent plain-Python computation (tests/support/oracle.py).

Lake state is written directly in the validator's layout (per-file Parquet per date, metadata
snapshots), then the real Runner recomputes on the warm local Spark session.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from playcount.devstack import generate
from tests.support import oracle

pytestmark = pytest.mark.spark
UTC = dt.UTC


def _ties_world() -> tuple[dict, dict, list[tuple[str, str, dt.datetime]]]:
    """Hand-made ties: equal song counts, equal genre counts, equal artist and age-group counts."""
    songs = {
        "t1": {"track_name": "One", "artists": "Bea; Abe", "track_genre": "rock", "duration_ms": 1000},
        "t2": {"track_name": "Two", "artists": "Abe", "track_genre": "rock", "duration_ms": 2000},
        "t3": {"track_name": "Three", "artists": "Cat", "track_genre": "rock", "duration_ms": 3000},
        "t4": {"track_name": "Four", "artists": "Dan;Bea", "track_genre": "rock", "duration_ms": 4000},
        "t5": {"track_name": "Five", "artists": "Eve", "track_genre": "jazz", "duration_ms": 5000},
        "t6": {"track_name": "Six", "artists": "Fay", "track_genre": "pop", "duration_ms": 6000},
    }
    users = {"u1": {"user_age": 17}, "u2": {"user_age": 18}, "u3": {"user_age": 30}, "u4": {"user_age": 70}}
    at = dt.datetime(2025, 6, 24, 10, 0, tzinfo=UTC)
    plays = [("u1", "t4"), ("u2", "t3"), ("u3", "t2"), ("u4", "t1"),  # rock: four songs tied at 1
             ("u1", "t5"), ("u2", "t6"),  # jazz and pop tied at 1: name decides
             ("u3", "t5"), ("u4", "t6")]  # fmt: skip
    events = [(u, t, at + dt.timedelta(seconds=i)) for i, (u, t) in enumerate(plays)]
    return songs, users, events


def test_ties_are_broken_as_defined(lake_state, make_runner, h):
    songs, users, events = _ties_world()
    lake_state.metadata(songs, users)
    dates = lake_state.events("a", events)
    results = make_runner().recompute([h.validated("streams", dates)])
    expected = oracle.kpis([(u, t, w.isoformat()) for u, t, w in events], songs, users)
    oracle.assert_matches(results, expected)
    rock = next(g for g in results[0].genres if g.genre == "rock")
    assert [s.track_id for s in rock.top_songs] == ["t1", "t2", "t3"]  # 1 listen each: track_id ascending
    assert [g.genre for g in results[0].top_genres] == ["rock", "jazz", "pop"]
    hour = results[0].hours[0]
    # Abe, Bea, Eve and Fay have 2 listens each; every age bin has 2: name and youth decide
    assert (hour.top_artist, hour.most_engaged_age_group) == ("Abe", "<18")


def test_generated_files_with_cross_file_duplicates_and_midnight(lake_state, make_runner, h):
    songs_t, users_t, cat = generate.dataset(seed=21, n_tracks=200, n_users=90)
    songs = oracle.metadata_from_csv(songs_t.to_pylist(), "track_id")
    users = oracle.metadata_from_csv(users_t.to_pylist(), "user_id")
    lake_state.metadata(songs, users)
    rng = np.random.default_rng(4)
    days = [dt.date(2025, 6, 24), dt.date(2025, 6, 25)]
    all_events = []
    for fid in ("f1", "f2"):
        table = generate.streams_table(rng, cat, 1500, days)
        events = [(r["user_id"], r["track_id"], oracle.parse_time(r["listen_time"])) for r in table.to_pylist()]
        all_events += events
        lake_state.events(fid, events)
    # f3 repeats 200 events of f1 exactly (duplicates across files), and spans midnight
    duplicate = all_events[:200]
    lake_state.events("f3", duplicate)
    results = make_runner().recompute([h.validated("streams", days, "f1"), h.validated("streams", days, "f3")])
    expected = oracle.kpis([(u, t, w.isoformat()) for u, t, w in all_events + duplicate], songs, users)
    oracle.assert_matches(results, expected)
    assert sum(r.events for r in results) == len(set(all_events))


def test_genre_fix_recomputes_history_and_only_touched_dates(lake_state, make_runner, h):
    songs, users, events = _ties_world()
    later = [(u, t, w + dt.timedelta(days=2)) for u, t, w in events]
    lake_state.metadata(songs, users)
    lake_state.events("a", events + later)
    runner = make_runner()
    first = runner.recompute([h.validated("streams", [dt.date(2025, 6, 24)])])
    assert [r.date for r in first] == [dt.date(2025, 6, 24)]  # the other date was not asked for
    songs["t5"] = {**songs["t5"], "track_genre": "rock"}  # a corrected genre
    lake_state.metadata(songs, users)
    second = runner.recompute([h.validated("songs", [dt.date(2025, 6, 24)], "songs-fix")])
    assert second[0].version > first[0].version
    expected = oracle.kpis([(u, t, w.isoformat()) for u, t, w in events], songs, users)
    oracle.assert_matches(second, expected)
    assert "jazz" not in {g.genre for g in second[0].genres}


def test_same_input_same_output_and_one_message_per_date(settings, lake_state, make_runner, h):
    songs, users, events = _ties_world()
    lake_state.metadata(songs, users)
    dates = lake_state.events("a", events)
    runner = make_runner()
    one = runner.recompute([h.validated("streams", dates)])
    two = runner.recompute([h.validated("streams", dates)])
    assert h.comparable(one) == h.comparable(two)
    # one message per date and computation, each pointing at its stored result
    received = h.received_results(settings)
    assert sorted(ready.version for ready, _ in received) == sorted([one[0].version, two[0].version])
    assert all(stored.date == dates[0] and stored.version == ready.version for ready, stored in received)
