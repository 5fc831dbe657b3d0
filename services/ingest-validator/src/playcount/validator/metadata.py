"""Songs and users files: row rules, the upsert into the catalog, and which ids it changed.

Songs: track_id, track_genre and a positive integer duration_ms are required per row;
genres are stored trimmed and lower-cased. The first row of a repeated track_id wins, the
rest are quarantined (`duplicate_track_id`). Users: user_id and an integer user_age in 0..130.
A later file upserts rows by id (`core.snapshots`); `changed_ids` lists the ids already known
whose compared attributes it changes.

`judge_object` judges one metadata object into the catalog, in this order: the quarantined
rows are uploaded, then the file's rows become the catalog's newest segment (`upsert`, applied
once per file id), then the dates holding a changed id are asked of the date index. It returns
the report; the handler stores it, and holds its metadata lock around the whole call.
`mergeable` tells compaction which segments it may merge (never one whose file has no report).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pyarrow as pa
import pyarrow.compute as pc

from playcount.core import lake, parquet, retrying, snapshots
from playcount.core.config import Settings
from playcount.core.errors import TransientError
from playcount.core.genre_columns import genre_problems, normalise_genres
from playcount.core.messages import FileKind, S3ObjectRef
from playcount.core.reports import FileReport
from playcount.validator import dateindex, finishing, storage
from playcount.validator.csvinput import open_csv
from playcount.validator.quarantine import Quarantine, schema_for, store_rows

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

SONG_REQUIRED = ("track_id", "track_name", "artists", "track_genre", "duration_ms")
SONG_WANTED = (*SONG_REQUIRED, "popularity")
USER_REQUIRED = ("user_id", "user_age", "user_country", "created_at")
USER_WANTED = (*USER_REQUIRED, "user_name")

SONG_SCHEMA = parquet.SONGS_SNAPSHOT
USER_SCHEMA = parquet.USERS_SNAPSHOT
_INT = r"^\s*[+]?\d{1,12}(\.0*)?\s*$"
_FILE_ID = re.compile(r"[0-9a-f]{24}")
UPSERT_ATTEMPTS = 8
# a lost race for the manifest is tried again after uniform(0, min(0.4 s, 50 ms * 2**n))
UPSERT_BASE_SECONDS = 0.05
UPSERT_CAP_SECONDS = 0.4


@dataclass(frozen=True)
class JudgedMetadata:
    """One batch of songs or users rows, judged: the clean rows and the rejected rows with their reasons."""

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


def _split(batch: pa.RecordBatch, first_line: int, reason: pa.Array, accepted: pa.Table) -> JudgedMetadata:
    ok = pc.is_null(reason)
    lines = pa.array(range(first_line, first_line + batch.num_rows), pa.int64())
    originals = {name: batch.column(name) for name in batch.schema.names}
    rejected = pa.table({"line": lines, **originals, "reason": reason}).filter(pc.invert(ok))
    return JudgedMetadata(accepted=accepted.append_column("line", lines).filter(ok), rejected=rejected)


def judge_songs(batch: pa.RecordBatch, first_line: int) -> JudgedMetadata:
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


def judge_users(batch: pa.RecordBatch, first_line: int) -> JudgedMetadata:
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
    judge: Callable[[pa.RecordBatch, int], JudgedMetadata]
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


def judge_object(
    settings: Settings,
    s3: S3Client,
    fs: Any,
    body: Any,
    fid: str,
    ref: S3ObjectRef,
    kind: FileKind,
    base: dict[str, Any],
) -> FileReport:
    """Judge the songs or users object in `body` into the catalog (see the module doc); its report.

    Raises `FileRejected` when the file as a whole is refused (nothing is written then).
    """
    spec = SPECS[kind]
    id_col = spec.id_column
    stream = open_csv(body, ref.key, spec.required, spec.wanted, newlines_in_values=True)
    quarantine = Quarantine(Path(storage.work_dir(settings)) / f"{fid}-rejected.csv", schema_for(spec.wanted))
    accepted, rows, malformed = [], 0, 0
    try:
        for batch in stream.batches:
            judged = spec.judge(batch, rows + 1)
            rows += batch.num_rows
            accepted.append(judged.accepted)
            quarantine.write(judged.rejected)
            malformed += quarantine.write_malformed(stream.drain_malformed())
        malformed += quarantine.write_malformed(stream.drain_malformed())
        whole = (
            pa.concat_tables(accepted) if accepted else spec.schema.append(pa.field("line", pa.int64())).empty_table()
        )
        table, repeated = first_per_id(whole, id_col)
        if pc.any(repeated).as_py():
            quarantine.write(_repeats_as_rejected(whole.filter(repeated), id_col))
        rejected_key = store_rows(settings, fs, fid, quarantine)
    finally:
        quarantine.close()
        quarantine.path.unlink(missing_ok=True)
    table = table.drop_columns(["line"])
    changed = upsert(settings, s3, fs, cast(snapshots.Kind, kind), fid, table)
    # asked after the new manifest is stored: a date whose index appears later is computed
    # by its own file's message, which the runner handles with this catalog or a newer one
    dates = dateindex.dates_with(settings, s3, fs, id_col, changed)
    return FileReport(
        **base,
        status="accepted",
        rows_read=rows + malformed,
        rows_accepted=table.num_rows,
        rows_quarantined=quarantine.rows,
        quarantined_by_reason=quarantine.counts,
        dates=dates,
        changed_ids=len(changed),
        rejected_rows_key=rejected_key,
        archived_key=lake.archive_key(settings, ref.key),
        validated_at=dt.datetime.now(dt.UTC),
    )


def upsert(settings: Settings, s3: S3Client, fs: Any, kind: snapshots.Kind, fid: str, table: pa.Table) -> list[str]:
    """Store the file's rows as the catalog's newest segment; the known ids whose attributes it changed.

    Applied once: a delivery that died after storing the manifest (before its report) left its
    segment listed under its file id, so the redelivery only compares it with the catalog as it
    was before that segment, and finds the same changed ids. Validators in other processes
    upsert concurrently: the manifest write is conditional, and the loser reads the new
    manifest and tries again (its unlisted segment is deleted by compaction later).
    """
    s, spec = settings, SPECS[kind]
    if table.num_rows == 0:
        return []
    columns = [spec.id_column, *spec.compare]
    ids = table[spec.id_column]
    try:
        for attempt in retrying.retrying(
            event="catalog.upsert_conflict",
            retry_on=lambda exc: isinstance(exc, snapshots.CatalogConflict),
            attempts=UPSERT_ATTEMPTS,
            base=UPSERT_BASE_SECONDS,
            cap=UPSERT_CAP_SECONDS,
            kind=kind,
        ):
            with attempt:
                manifest = snapshots.read_manifest(s, s3, kind)
                mine = next((seg for seg in manifest.segments if seg.name == fid), None)
                if mine is not None:
                    before = snapshots.read_current(s, fs, manifest, columns, ids=ids, below_seq=mine.seq)
                    return changed_ids(table, before, spec.id_column, spec.compare)
                before = snapshots.read_current(s, fs, manifest, columns, ids=ids)
                snapshots.upsert(s, s3, fs, manifest, fid, table)  # CatalogConflict: another writer won
                return changed_ids(table, before, spec.id_column, spec.compare)
    except snapshots.CatalogConflict as exc:
        raise TransientError(f"the {kind} manifest kept changing: {UPSERT_ATTEMPTS} upserts lost the race") from exc
    raise AssertionError("unreachable: the retries end by returning or raising")


def mergeable(settings: Settings, s3: S3Client, segment: snapshots.Segment) -> bool:
    """Whether compaction may merge the segment: yes, unless it is a file's and that file has no report yet."""
    if not _FILE_ID.fullmatch(segment.name):
        return True
    return finishing.has_report(settings, s3, segment.name)


def _repeats_as_rejected(repeats: pa.Table, id_col: str) -> pa.Table:
    return repeats.append_column("reason", pa.repeat(f"duplicate_{id_col}", repeats.num_rows))
