"""The metadata snapshots as dense integer dimensions, so the Spark job works on numbers.

Every id and name a KPI ranks by is replaced by its rank in the sorted list of distinct
values: `tidx` (track_id), `gidx` (genre), `aidx` (trimmed artist), `uidx` (user_id), and
`ag` (age-group bin, youngest first). Because each code is that value's position in binary
(code point) order, "most listens, ties by name ascending" is exactly "most listens, ties by
the smaller code". The job therefore compares and hashes integers only, and the driver
turns the few winning codes back into names. A snapshot holds metadata (thousands of rows),
never events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from playcount.core import lake
from playcount.core.kpis import AGE_LOWER_BOUNDS

SONG_COLUMNS = ("track_id", "track_name", "artists", "track_genre", "duration_ms")
USER_COLUMNS = ("user_id", "user_age")
SONGS_SCHEMA = pa.schema([lake.SONGS_SNAPSHOT.field(c) for c in SONG_COLUMNS])
USERS_SCHEMA = pa.schema([lake.USERS_SNAPSHOT.field(c) for c in USER_COLUMNS])


@dataclass(frozen=True)
class Dimensions:
    """Encoded songs and users, and the decoders for the codes the job returns."""

    songs: pa.Table  # track_id, tidx, gidx, duration_ms
    song_artists: pa.Table  # tidx, aidx (one row per credited artist, as the `;` list has them)
    users: pa.Table  # user_id, uidx, ag
    track_ids: list[str]
    track_names: list[str]
    track_artists: list[str]
    genres: list[str]
    artists: list[str]

    def genre(self, gidx: int) -> str:
        return self.genres[gidx]

    def artist(self, aidx: int) -> str:
        return self.artists[aidx]


def encode(songs: pa.Table, users: pa.Table) -> Dimensions:
    """Dimensions of one songs snapshot and one users snapshot (extra columns are ignored)."""
    songs = _first_per_id(_conform(songs, SONGS_SCHEMA), "track_id")
    songs = songs.take(pc.sort_indices(songs["track_id"]))
    users = _first_per_id(_conform(users, USERS_SCHEMA), "user_id")
    users = users.take(pc.sort_indices(users["user_id"]))

    genres = _sorted_distinct(songs["track_genre"])
    lists = pc.split_pattern(pc.fill_null(songs["artists"], ""), ";")
    credited = pc.utf8_trim_whitespace(pc.list_flatten(lists))
    owner = pc.list_parent_indices(lists)
    named = pc.not_equal(credited, "")
    credited, owner = credited.filter(named), owner.filter(named)
    artists = _sorted_distinct(credited)

    n_songs, n_users = songs.num_rows, users.num_rows
    return Dimensions(
        songs=pa.table(
            {
                "track_id": songs["track_id"],
                "tidx": pa.array(np.arange(n_songs, dtype=np.int32)),
                "gidx": pc.cast(pc.index_in(songs["track_genre"], value_set=genres), pa.int32()),
                "duration_ms": songs["duration_ms"],
            }
        ),
        song_artists=pa.table(
            {
                "tidx": pc.cast(owner, pa.int32()),
                "aidx": pc.cast(pc.index_in(credited, value_set=artists), pa.int32()),
            }
        ),
        users=pa.table(
            {
                "user_id": users["user_id"],
                "uidx": pa.array(np.arange(n_users, dtype=np.int32)),
                "ag": age_bins(users["user_age"]),
            }
        ),
        track_ids=songs["track_id"].to_pylist(),
        track_names=[n or "" for n in songs["track_name"].to_pylist()],
        track_artists=[a or "" for a in songs["artists"].to_pylist()],
        genres=genres.to_pylist(),
        artists=artists.to_pylist(),
    )


def age_bins(ages: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The index in `AGE_GROUPS` of each age (null stays null)."""
    values = pc.fill_null(ages, 0).to_numpy(zero_copy_only=False)
    bins = np.searchsorted(AGE_LOWER_BOUNDS, values, side="right").astype(np.int32)
    return pa.array(bins, pa.int32(), mask=pc.is_null(ages).to_numpy(zero_copy_only=False))


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """The columns of `schema`, cast to its types; a missing column is all null."""
    columns = []
    for f in schema:
        if f.name in table.column_names:
            columns.append(pc.cast(table[f.name], f.type))
        else:
            columns.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _first_per_id(table: pa.Table, id_column: str) -> pa.Table:
    """Rows with an id, the first of each id only: a repeated id would multiply joined events."""
    table = table.filter(pc.is_valid(table[id_column]))
    if pc.count_distinct(table[id_column]).as_py() == table.num_rows:
        return table
    indexed = table.append_column("_row", pa.array(np.arange(table.num_rows)))
    firsts = indexed.group_by(id_column, use_threads=False).aggregate([("_row", "min")])
    return table.take(np.sort(firsts["_row_min"].to_numpy()))


def _sorted_distinct(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    distinct = pc.unique(values).drop_null()
    return distinct.take(pc.sort_indices(distinct))
