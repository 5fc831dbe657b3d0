"""Songs and users metadata: row rules, and which ids an upsert changes.

Songs: track_id, track_genre and a positive integer duration_ms are required per row;
genres are stored trimmed and lower-cased. The first row of a repeated track_id wins, the
rest are quarantined (`duplicate_track_id`). Users: user_id and an integer user_age in 0..130.
A later file upserts rows by id (`core.snapshots`); `changed_ids` lists the ids already known
whose compared attributes it changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from playcount.core import lake
from playcount.core.keys import genre_problems, normalise_genres

SONG_REQUIRED = ("track_id", "track_name", "artists", "track_genre", "duration_ms")
SONG_WANTED = (*SONG_REQUIRED, "popularity")
USER_REQUIRED = ("user_id", "user_age", "user_country", "created_at")
USER_WANTED = (*USER_REQUIRED, "user_name")

SONG_SCHEMA = lake.SONGS_SNAPSHOT
USER_SCHEMA = lake.USERS_SNAPSHOT
_INT = r"^\s*[+]?\d{1,12}(\.0*)?\s*$"


@dataclass(frozen=True)
class Judged:
    accepted: pa.Table  # the spec's schema plus `line`
    rejected: pa.Table  # line, the original columns, reason


def _blank(values: pa.Array) -> pa.Array:
    return pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(values)), 0)


def _as_int(values: pa.Array) -> pa.Array:
    ok = pc.match_substring_regex(values, _INT)
    cleaned = pc.if_else(ok, pc.utf8_trim_whitespace(values), pa.scalar(None, pa.string()))
    return pc.cast(pc.cast(cleaned, pa.float64()), pa.int64())


def _reasons(n: int, rules: list[tuple[str, pa.Array]]) -> pa.Array:
    reason = pa.nulls(n, pa.string())
    for code, hit in reversed(rules):
        reason = pc.if_else(pc.fill_null(hit, False), pa.scalar(code), reason)
    return reason


def _split(batch: pa.RecordBatch, first_line: int, reason: pa.Array, accepted: pa.Table) -> Judged:
    ok = pc.is_null(reason)
    lines = pa.array(range(first_line, first_line + batch.num_rows), pa.int64())
    originals = {name: batch.column(name) for name in batch.schema.names}
    rejected = pa.table({"line": lines, **originals, "reason": reason}).filter(pc.invert(ok))
    return Judged(accepted=accepted.append_column("line", lines).filter(ok), rejected=rejected)


def judge_songs(batch: pa.RecordBatch, first_line: int) -> Judged:
    track = pc.utf8_trim_whitespace(batch.column("track_id"))
    genre = normalise_genres(batch.column("track_genre"))
    duration = _as_int(batch.column("duration_ms"))
    popularity = (
        _as_int(batch.column("popularity"))
        if "popularity" in batch.schema.names
        else pa.nulls(batch.num_rows, pa.int64())
    )
    reason = _reasons(
        batch.num_rows,
        [
            ("missing_track_id", _blank(track)),
            ("missing_track_genre", _blank(genre)),
            ("bad_track_genre", pc.is_valid(genre_problems(genre))),
            ("bad_track_id", pc.greater(pc.utf8_length(track), 128)),
            ("bad_duration_ms", pc.or_kleene(pc.is_null(duration), pc.less_equal(duration, 0))),
        ],
    )
    accepted = pa.table(
        {
            "track_id": track,
            "track_name": pc.utf8_trim_whitespace(batch.column("track_name")),
            "artists": pc.utf8_trim_whitespace(batch.column("artists")),
            "track_genre": genre,
            "duration_ms": duration,
            "popularity": popularity,
        },
        schema=SONG_SCHEMA,
    )
    return _split(batch, first_line, reason, accepted)


def judge_users(batch: pa.RecordBatch, first_line: int) -> Judged:
    user = pc.utf8_trim_whitespace(batch.column("user_id"))
    age = _as_int(batch.column("user_age"))
    name = (
        pc.utf8_trim_whitespace(batch.column("user_name"))
        if "user_name" in batch.schema.names
        else pa.nulls(batch.num_rows, pa.string())
    )
    reason = _reasons(
        batch.num_rows,
        [
            ("missing_user_id", _blank(user)),
            ("bad_user_id", pc.greater(pc.utf8_length(user), 128)),
            ("bad_user_age", pc.or_kleene(pc.is_null(age), pc.greater(age, 130))),
            ("missing_created_at", _blank(batch.column("created_at"))),
        ],
    )
    accepted = pa.table(
        {
            "user_id": user,
            "user_name": name,
            "user_age": age,
            "user_country": pc.utf8_trim_whitespace(batch.column("user_country")),
            "created_at": pc.utf8_trim_whitespace(batch.column("created_at")),
        },
        schema=USER_SCHEMA,
    )
    return _split(batch, first_line, reason, accepted)


def first_per_id(table: pa.Table, id_column: str) -> tuple[pa.Table, pa.Array]:
    """(the first row of each id, a mask of the later repeats), by the `line` column."""
    firsts = table.group_by(id_column, use_threads=False).aggregate([("line", "min")])
    keep = pc.is_in(table["line"], value_set=firsts["line_min"])
    return table.filter(keep), pc.invert(keep)


def changed_ids(incoming: pa.Table, current: pa.Table, id_column: str, compare: Iterable[str]) -> list[str]:
    """Ids of `incoming` already in `current` (their current rows) with a `compare` attribute changed.

    A null and a value differ; two nulls do not.
    """
    cols = list(compare)
    joined = incoming.select([id_column, *cols]).join(
        current.select([id_column, *cols]), keys=id_column, right_suffix="_old", join_type="inner"
    )
    changed = pa.repeat(False, joined.num_rows)
    for c in cols:
        new, old = joined[c], joined[f"{c}_old"]
        differ = pc.if_else(
            pc.and_(pc.is_null(new), pc.is_null(old)), False, pc.fill_null(pc.not_equal(new, old), True)
        )
        changed = pc.or_(changed, differ)
    return sorted(joined.filter(changed)[id_column].to_pylist())


@dataclass(frozen=True)
class Spec:
    """How one kind of metadata file is read, judged and merged."""

    required: tuple[str, ...]
    wanted: tuple[str, ...]
    judge: Callable[[pa.RecordBatch, int], Judged]
    id_column: str
    compare: tuple[str, ...]
    schema: pa.Schema


SPECS = {
    "songs": Spec(
        SONG_REQUIRED,
        SONG_WANTED,
        judge_songs,
        "track_id",
        ("track_name", "artists", "track_genre", "duration_ms"),
        SONG_SCHEMA,
    ),
    "users": Spec(USER_REQUIRED, USER_WANTED, judge_users, "user_id", ("user_age",), USER_SCHEMA),
}
