"""A realistic, seeded data set: songs (Spotify-like layout), users, and stream files.

Track popularity is Zipf-like with a long tail, within each genre as over the whole catalog,
tracks have one to three artists (`;`-separated), listens follow a daily rhythm over the hours
and spread over several days.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

GENRES = (
    "pop", "rock", "hip-hop", "jazz", "classical", "electronic", "country", "r-n-b", "reggae", "blues",
    "metal", "folk", "latin", "k-pop", "indie", "soul", "punk", "disco", "ambient", "techno",
)  # fmt: skip
COUNTRIES = ("US", "GB", "DE", "FR", "BR", "JP", "IN", "NG", "MX", "KR", "SE", "ZA")
_SYLLABLES = ("la", "mo", "ri", "ka", "zen", "tor", "vi", "sol", "neo", "bel", "dra", "quin", "ul", "pha")
_HOUR_WEIGHTS = np.array([2, 1, 1, 1, 1, 2, 4, 6, 7, 6, 5, 5, 6, 6, 5, 5, 6, 8, 9, 10, 10, 9, 7, 4], dtype=float)
_ALPHABET = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
# Zipf-Mandelbrot offset of a track's rank in its genre: a genre's #1, #2, #3 are played about
# 1 : 0.75 : 0.6 rather than 1 : 0.5 : 0.33, the flatter head of real charts; the tail keeps its slope
_HEAD_OFFSET = 2.0


@dataclass(frozen=True)
class SyntheticCatalog:
    """What generated listens draw from: the ids, and each track's chance of being played."""

    track_ids: np.ndarray
    user_ids: np.ndarray
    popularity: np.ndarray  # probability of each track being played


def listen_weights(genre_of: np.ndarray, zipf_s: float = 1.0) -> np.ndarray:
    """Each track's probability of being played: Zipf-like within its genre, and over the catalog.

    A track's rank in its genre is its order of appearance (ids are random, so the order is too,
    and a prefix of a table ranks its tracks as the whole table does). The track at rank `r` of a
    genre of `n` tracks weighs `n / (r + offset) ** zipf_s`: each genre has its own hits and long
    tail, and since a genre's weight grows with its size, ranking every track of the catalog
    together gives the same law, frequency ~ rank ** -zipf_s, past the first few dozen ranks.
    """
    _, genre, sizes = np.unique(genre_of, return_inverse=True, return_counts=True)
    by_genre = np.argsort(genre, kind="stable")
    rank = np.empty(len(genre_of))
    rank[by_genre] = np.arange(len(genre_of)) - np.repeat(np.cumsum(sizes) - sizes, sizes) + 1
    weights = sizes[genre] / (rank + _HEAD_OFFSET) ** zipf_s
    return weights / weights.sum()


def _spotify_popularity(weights: np.ndarray) -> np.ndarray:
    """Spotify's 0..100 score, which follows a track's plays: here its log share of listens, scaled."""
    logs = np.log(weights)
    span = np.ptp(logs)
    scaled = (logs - logs.min()) / span if span > 0 else np.full(len(weights), 0.5)
    return np.round(100 * scaled).astype(np.int64)


def _ids(rng: np.random.Generator, n: int, length: int) -> np.ndarray:
    chars = np.ascontiguousarray(_ALPHABET[rng.integers(0, len(_ALPHABET), size=(n, length))])
    ids = chars.view(f"<U{length}").ravel()
    unique = np.unique(ids)
    return unique[:n] if len(unique) >= n else _ids(rng, n, length + 1)


def _name(rng: np.random.Generator, words: int) -> str:
    return " ".join("".join(rng.choice(_SYLLABLES, size=rng.integers(2, 4))).capitalize() for _ in range(words))


def _names(rng: np.random.Generator, n: int, words: tuple[int, int], pool: int = 20_000) -> np.ndarray:
    """`n` names of `words[0]`..`words[1]` words, drawn from a pool of words (fast for millions)."""
    vocabulary = np.array([_name(rng, 1) for _ in range(min(pool, max(n, 10)))])
    counts = rng.integers(words[0], words[1] + 1, size=n)
    out = vocabulary[rng.integers(0, len(vocabulary), size=n)]
    for w in range(1, words[1]):
        more = vocabulary[rng.integers(0, len(vocabulary), size=n)]
        out = np.where(counts > w, np.char.add(np.char.add(out, " "), more), out)
    return out


def _credits(rng: np.random.Generator, pool: np.ndarray, n: int) -> list[str]:
    """One to three distinct artists of `pool` per track, `;`-separated."""
    size = len(pool)
    first = rng.integers(0, size, size=n)
    # strictly increasing offsets below `size` keep the three picks distinct
    second = (first + 1 + rng.integers(0, max(1, (size - 1) // 2), size=n)) % size
    third = (second + 1 + rng.integers(0, max(1, (size - 1) // 2), size=n)) % size
    k = rng.integers(1, 4, size=n)
    picks = np.stack([pool[first], pool[second], pool[third]], axis=1)
    return [";".join(row[:count]) for row, count in zip(picks.tolist(), k.tolist(), strict=True)]


def songs_table(rng: np.random.Generator, n_tracks: int, genres: tuple[str, ...] = GENRES) -> pa.Table:
    """Songs in the public Spotify tracks layout: an unnamed index column, then 20 named columns."""
    track_ids = _ids(rng, n_tracks, 22)
    artists_pool = _names(rng, max(10, n_tracks // 3), (2, 2))
    artists = _credits(rng, artists_pool, n_tracks)
    genre_weights = 1.0 / np.arange(1, len(genres) + 1) ** 0.6
    genre_of = rng.choice(np.array(genres), size=n_tracks, p=genre_weights / genre_weights.sum())
    floats = {
        name: np.round(rng.random(n_tracks), 3)
        for name in ("danceability", "energy", "speechiness", "acousticness", "instrumentalness", "liveness",
                     "valence")
    }  # fmt: skip
    return pa.table(
        {
            "": np.arange(n_tracks),
            "track_id": track_ids,
            "artists": artists,
            "album_name": _names(rng, n_tracks, (2, 2)),
            "track_name": _names(rng, n_tracks, (1, 3)),
            "popularity": _spotify_popularity(listen_weights(genre_of)),
            "duration_ms": rng.integers(90_000, 420_000, size=n_tracks),
            "explicit": rng.random(n_tracks) < 0.1,
            "danceability": floats["danceability"],
            "energy": floats["energy"],
            "key": rng.integers(0, 12, size=n_tracks),
            "loudness": np.round(rng.uniform(-30, 0, n_tracks), 3),
            "mode": rng.integers(0, 2, size=n_tracks),
            "speechiness": floats["speechiness"],
            "acousticness": floats["acousticness"],
            "instrumentalness": floats["instrumentalness"],
            "liveness": floats["liveness"],
            "valence": floats["valence"],
            "tempo": np.round(rng.uniform(60, 200, n_tracks), 3),
            "time_signature": rng.integers(3, 6, size=n_tracks),
            "track_genre": genre_of,
        }
    )


def users_table(rng: np.random.Generator, n_users: int) -> pa.Table:
    start = np.datetime64("2018-01-01T00:00:00", "s")
    created = start + rng.integers(0, 6 * 365 * 86400, size=n_users).astype("timedelta64[s]")
    return pa.table(
        {
            "user_id": np.char.mod("%d", np.arange(100000, 100000 + n_users)),
            "user_name": _names(rng, n_users, (1, 1)),
            "user_age": np.clip(np.round(rng.normal(31, 12, n_users)), 13, 90).astype(int),
            "user_country": rng.choice(np.array(COUNTRIES), size=n_users),
            "created_at": np.char.replace(np.datetime_as_string(created, unit="s"), "T", " "),
        }
    )


def catalog(songs: pa.Table, users: pa.Table, zipf_s: float = 1.0) -> SyntheticCatalog:
    """What listens draw from: with the default exponent, in step with the songs' `popularity`."""
    return SyntheticCatalog(
        track_ids=np.array(songs["track_id"].to_pylist()),
        user_ids=np.array(users["user_id"].to_pylist()),
        popularity=listen_weights(np.array(songs["track_genre"].to_pylist()), zipf_s),
    )


def streams_table(rng: np.random.Generator, cat: SyntheticCatalog, rows: int, days: list[dt.date]) -> pa.Table:
    """`rows` listens spread over `days`, with a daily rhythm; times at second precision."""
    day_index = rng.integers(0, len(days), size=rows)
    hours = rng.choice(24, size=rows, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    seconds = hours * 3600 + rng.integers(0, 3600, size=rows)
    base = np.array([np.datetime64(d, "s") for d in days])
    times = base[day_index] + seconds.astype("timedelta64[s]")
    # users are active at different rates: a few heavy listeners, many light ones
    user_weights = 1.0 / np.arange(1, len(cat.user_ids) + 1) ** 0.7
    users = rng.choice(cat.user_ids, size=rows, p=user_weights / user_weights.sum())
    tracks = rng.choice(cat.track_ids, size=rows, p=cat.popularity)
    text = np.datetime_as_string(times, unit="s")
    return pa.table({"user_id": users, "track_id": tracks, "listen_time": np.char.replace(text.astype(str), "T", " ")})


def to_csv(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(quoting_style="needed"))
    return sink.getvalue()


def dataset(seed: int, n_tracks: int, n_users: int) -> tuple[pa.Table, pa.Table, SyntheticCatalog]:
    rng = np.random.default_rng(seed)
    songs = songs_table(rng, n_tracks)
    users = users_table(rng, n_users)
    return songs, users, catalog(songs, users)
