"""The generated data set: seeded, and popular the way a real service is (a long tail, no genre owned by one track)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from playcount.devstack import generate

pytestmark = pytest.mark.fast

DAY = dt.date(2025, 6, 24)


def _listens(seed: int, tracks: int, rows: int) -> tuple[pa.Table, generate.SyntheticCatalog, np.ndarray]:
    """The songs, the catalog, and each song's listens in one generated day of `rows` listens."""
    songs, _, cat = generate.dataset(seed=seed, n_tracks=tracks, n_users=500)
    streams = generate.streams_table(np.random.default_rng(seed + 1), cat, rows, [DAY])
    ids = np.array(songs["track_id"].to_pylist())
    order = np.argsort(ids)
    played = order[np.searchsorted(ids, np.array(streams["track_id"].to_pylist()), sorter=order)]
    return songs, cat, np.bincount(played, minlength=len(ids))


@pytest.mark.parametrize("seed", [1, 7, 42])
def test_no_genre_is_owned_by_one_track(seed):
    # GIVEN a catalog of a few thousand tracks and a day of listens drawn from it
    songs, _, counts = _listens(seed, tracks=3000, rows=60_000)
    genres = np.array(songs["track_genre"].to_pylist())

    # WHEN each genre's listens are split by track
    shares = {}
    for genre in np.unique(genres):
        listens = counts[genres == genre]
        if listens.sum() >= 1000:  # enough listens for a share to mean something
            shares[str(genre)] = round(float(listens.max() / listens.sum()), 3)

    # THEN the top track of every genre takes a modest share, not most of it (about a tenth)
    assert len(shares) >= 10
    assert max(shares.values()) < 0.2, shares


def test_rank_frequency_follows_zipf_with_exponent_near_one():
    # GIVEN a day of listens over a few thousand tracks
    _, _, counts = _listens(3, tracks=4000, rows=200_000)

    # WHEN listens are ranked, most-played first, over the ranks counted well above Poisson noise
    ranked = np.sort(counts)[::-1]
    ranked = ranked[ranked >= 10]
    slope = np.polyfit(np.log(np.arange(1, len(ranked) + 1)), np.log(ranked), 1)[0]

    # THEN the long tail covers most of the catalog, and log(listens) falls with log(rank) at about -1
    assert len(ranked) > 0.8 * len(counts)
    assert -1.3 < slope < -0.7, slope


def test_spotify_popularity_follows_the_listens():
    songs, cat, counts = _listens(5, tracks=2000, rows=100_000)
    popularity = np.array(songs["popularity"].to_pylist())

    # the score never ranks a less-played track above a more-played one ...
    by_weight = np.argsort(-cat.popularity, kind="stable")
    assert np.all(np.diff(popularity[by_weight]) <= 0)
    assert popularity.min() >= 0 and popularity.max() == 100
    # ... and what was drawn agrees: the hundred most-listened tracks all score above the median
    most = np.argsort(-counts, kind="stable")[:100]
    assert popularity[most].min() > np.median(popularity)


def test_the_same_seed_gives_the_same_files_and_another_seed_does_not():
    def files(seed: int) -> list[bytes]:
        songs, users, cat = generate.dataset(seed=seed, n_tracks=1500, n_users=300)
        streams = generate.streams_table(np.random.default_rng(seed + 1), cat, 5000, [DAY, DAY + dt.timedelta(1)])
        return [generate.to_csv(t) for t in (songs, users, streams)]

    first = files(9)
    assert files(9) == first
    assert all(a != b for a, b in zip(files(10), first, strict=True))
