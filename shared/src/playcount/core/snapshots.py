"""The metadata catalog in the lake: immutable segments listed by one small manifest per kind.

{validated}metadata/manifests/{kind}.json                   the current segments, oldest first
{validated}metadata/{kind}/seg-{seq:010d}-{name}.parquet     one upsert's rows (or a compaction)

A kind's folder holds its segments only, so a table over the folder (Athena's `song_segments`,
infra/playcount.yaml) reads Parquet and nothing else. (Manifests were first written inside the
folder, as `{kind}/manifest.json`: `read_manifest` still finds one there, and the first write
moves it.)

A segment holds the snapshot schema plus `_seq`, one row per id, sorted by id, in row groups of
`ROW_GROUP_ROWS`. For each id the row with the highest `_seq` in the manifest is current, so an
upsert writes only its own rows: a 100-row correction of a 5M-row catalog is a 100-row segment
and a new manifest, not a rewrite. An upsert's segment is stamped with one new sequence number
and named after the file it came from; a compaction merges a run of the newest segments into
one, keeping each surviving row's own `_seq` (so rows order the same before and after).

The manifest's ETag names one state of the catalog, which readers use as their cache key. A key
is never rewritten with other content (a new sequence number or a new name gives a new key), so
a reader holding an older manifest still reads consistent files: a segment that leaves the
manifest is listed under `retired` and deleted only later (`core.compaction`).

Writers: one at a time per kind. `write_manifest(..., replaces=...)` is a conditional put on the
ETag it read, so a second writer fails with `CatalogConflict` instead of losing an update.
"""

from __future__ import annotations

import json
import time
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from playcount.core import aws, lake, parquet
from playcount.core.config import Settings
from playcount.core.s3 import is_missing, is_precondition_failed

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

Kind = Literal["songs", "users"]
SEQ = "_seq"
KINDS: tuple[Kind, ...] = ("songs", "users")
ID_COLUMN: dict[str, str] = {"songs": "track_id", "users": "user_id"}
SCHEMA: dict[str, pa.Schema] = {"songs": parquet.SONGS_SNAPSHOT, "users": parquet.USERS_SNAPSHOT}
ROW_GROUP_ROWS = 64 * 1024
GROUPS_PER_READ = 8  # a merge holds up to this many row groups of each segment
COMPACTED = "compact-"  # the name prefix of a merged segment (core.compaction)


class CatalogConflict(Exception):
    """The manifest changed since it was read: another writer got there first."""


@dataclass(frozen=True)
class Segment:
    key: str
    seq: int
    rows: int

    @property
    def name(self) -> str:
        """The name it was written under: the source file's id, or `compact-...` for a merge."""
        return self.key.rsplit("/", 1)[-1].removesuffix(".parquet").split("-", 2)[2]


@dataclass(frozen=True)
class Retired:
    """A segment no longer listed since `at` (epoch seconds), kept a while for readers of older manifests."""

    key: str
    at: float


@dataclass(frozen=True)
class Manifest:
    """One state of a kind's catalog: its segments, oldest first, and the manifest's ETag."""

    kind: Kind
    segments: tuple[Segment, ...] = field(default_factory=tuple)
    etag: str | None = None
    retired: tuple[Retired, ...] = field(default_factory=tuple)
    moving: bool = False  # read from where manifests were first kept: the next write moves it

    @property
    def next_seq(self) -> int:
        return max((s.seq for s in self.segments), default=0) + 1

    @property
    def rows(self) -> int:
        """Rows over all segments (an upper bound of the ids: a corrected id counts once per segment)."""
        return sum(s.rows for s in self.segments)

    def to_json(self) -> bytes:
        body = {
            "kind": self.kind,
            "segments": [{"key": s.key, "seq": s.seq, "rows": s.rows} for s in self.segments],
            "retired": [{"key": r.key, "at": r.at} for r in self.retired],
        }
        return json.dumps(body, indent=1).encode()


def prefix(s: Settings, kind: Kind) -> str:
    return f"{s.s3_validated_prefix}metadata/{kind}/"


def manifest_key(s: Settings, kind: Kind) -> str:
    return f"{s.s3_validated_prefix}metadata/manifests/{kind}.json"


def first_manifest_key(s: Settings, kind: Kind) -> str:
    """Where manifests were kept first: inside the kind's folder of segments."""
    return f"{prefix(s, kind)}manifest.json"


def segment_key(s: Settings, kind: Kind, seq: int, name: str) -> str:
    return f"{prefix(s, kind)}seg-{seq:010d}-{name}.parquet"


def read_manifest(s: Settings, s3: S3Client, kind: Kind) -> Manifest:
    """The current manifest (an empty one, with no ETag, when the kind has no catalog yet)."""
    # the new key is asked again last: a move (new key put, then the first one deleted) may land
    # between the first two reads, and must not look like a kind without a catalog
    here, first = manifest_key(s, kind), first_manifest_key(s, kind)
    for key, moving in ((here, False), (first, True), (here, False)):
        try:
            response = s3.get_object(Bucket=s.s3_bucket, Key=key)
        except ClientError as exc:
            if is_missing(exc):
                continue
            raise
        body = json.loads(response["Body"].read())
        segments = tuple(Segment(str(x["key"]), int(x["seq"]), int(x["rows"])) for x in body["segments"])
        retired = tuple(Retired(str(x["key"]), float(x["at"])) for x in body.get("retired", []))
        return Manifest(kind, segments, str(response["ETag"]), retired, moving)
    return Manifest(kind)


def write_manifest(s: Settings, s3: S3Client, manifest: Manifest, replaces: Manifest | None = None) -> Manifest:
    """Store `manifest` as the current state; returns it with its new ETag.

    With `replaces`, only if the stored manifest is still that one (absent when it had no ETag);
    otherwise `CatalogConflict`, and nothing is written.
    """
    condition: aws.IfMatch = {}
    if replaces is not None:
        # a manifest read where manifests were first kept is replaced by the first one at its new key
        condition = {"IfMatch": replaces.etag} if replaces.etag and not replaces.moving else {"IfNoneMatch": "*"}
    try:
        response = s3.put_object(
            Bucket=s.s3_bucket,
            Key=manifest_key(s, manifest.kind),
            Body=manifest.to_json(),
            ContentType="application/json",
            **condition,
        )
    except ClientError as exc:
        if is_precondition_failed(exc):
            raise CatalogConflict(f"the {manifest.kind} manifest changed since it was read") from exc
        raise
    if replaces is not None and replaces.moving:  # moved: nothing reads the first key any more
        s3.delete_object(Bucket=s.s3_bucket, Key=first_manifest_key(s, manifest.kind))
    return Manifest(manifest.kind, manifest.segments, str(response["ETag"]), manifest.retired)


def conform(table: pa.Table, kind: Kind) -> pa.Table:
    """The kind's snapshot columns, cast to its types; a missing column is all null."""
    schema = SCHEMA[kind]
    columns = [
        pc.cast(table[f.name], f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def segment_schema(kind: Kind) -> pa.Schema:
    return SCHEMA[kind].append(pa.field(SEQ, pa.int64()))


def segment_rows(kind: Kind, seq: int, table: pa.Table) -> pa.Table:
    """A segment's content from rows with unique ids: conformed, sorted by id, stamped with `seq`."""
    rows = conform(table, kind)
    rows = rows.take(pc.sort_indices(rows[ID_COLUMN[kind]]))
    return rows.append_column(SEQ, pa.repeat(pa.scalar(seq, pa.int64()), rows.num_rows))


def write_segment(s: Settings, fs: Any, kind: Kind, seq: int, name: str, table: pa.Table) -> Segment:
    """One segment (`segment_rows`) in the lake."""
    rows = segment_rows(kind, seq, table)
    key = segment_key(s, kind, seq, name)
    pq.write_table(rows, lake.path(s, key), filesystem=fs, row_group_size=ROW_GROUP_ROWS)
    return Segment(key, seq, rows.num_rows)


def upsert(s: Settings, s3: S3Client, fs: Any, manifest: Manifest, name: str, table: pa.Table) -> Manifest:
    """Add `table` (unique ids) as the newest segment: one segment named `name`, one new manifest."""
    segment = write_segment(s, fs, manifest.kind, manifest.next_seq, name, table)
    updated = Manifest(manifest.kind, (*manifest.segments, segment), retired=manifest.retired)
    return write_manifest(s, s3, updated, replaces=manifest)


# -- reading -------------------------------------------------------------------------------------
class _Sorted:
    """A sorted string array seen as a sequence of str, for `bisect` (O(log n) element reads)."""

    def __init__(self, values: pa.Array) -> None:
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, i: int) -> str:
        return str(self.values[i].as_py())


def sorted_unique(ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The distinct non-null values of `ids`, sorted (byte order, as Parquet statistics compare)."""
    values = pc.unique(pc.drop_null(ids))
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    return values.take(pc.sort_indices(values))


def row_groups_holding(parquet: pq.ParquetFile, column: str, wanted: pa.Array) -> list[tuple[int, pa.Array]]:
    """The row groups whose [min, max] of `column` holds one of `wanted` (sorted, unique), each
    with the slice of `wanted` in its range.

    Parquet's statistics bound each group; pyarrow does not prune `is_in` filters with them, so
    this does. A group without statistics is read with all of `wanted`.
    """
    index = parquet.schema_arrow.get_field_index(column)
    view = _Sorted(wanted)
    groups = []
    for g in range(parquet.metadata.num_row_groups):
        stats = parquet.metadata.row_group(g).column(index).statistics
        if stats is None or not stats.has_min_max:
            groups.append((g, wanted))
            continue
        start = bisect_left(view, stats.min)
        if start < len(view) and view[start] <= stats.max:
            end = bisect_right(view, stats.max, lo=start)
            groups.append((g, wanted.slice(start, end - start)))
    return groups


def read_current(
    s: Settings,
    fs: Any,
    manifest: Manifest,
    columns: Sequence[str] | None = None,
    ids: pa.Array | None = None,
    below_seq: int | None = None,
) -> pa.Table:
    """The current row of each id (of `ids` only, when given), with `columns` (default: all).

    With `ids`, only the row groups whose statistics can hold one of them are read, one at a
    time, so memory follows the matches, not the catalog. `below_seq` reads the catalog as it
    was before that sequence number (rows with a lower `_seq` only).
    """
    kind = manifest.kind
    id_column = ID_COLUMN[kind]
    wanted = list(dict.fromkeys([id_column, *(columns or SCHEMA[kind].names), SEQ]))
    keep = sorted_unique(ids) if ids is not None else None
    parts = []
    for segment in manifest.segments:
        parquet = pq.ParquetFile(lake.path(s, segment.key), filesystem=fs)
        if keep is None:
            groups: list[tuple[int, pa.Array | None]] = [(g, None) for g in range(parquet.metadata.num_row_groups)]
        else:
            groups = list(row_groups_holding(parquet, id_column, keep))
        for g, in_range in groups:
            rows = parquet.read_row_group(g, columns=wanted)
            mask = pc.is_in(rows[id_column], value_set=in_range) if in_range is not None else None
            if below_seq is not None:
                older = pc.less(rows[SEQ], below_seq)
                mask = older if mask is None else pc.and_(mask, older)
            parts.append(rows if mask is None else rows.filter(mask))
    schema = pa.schema([*(SCHEMA[kind].field(c) for c in wanted if c != SEQ), pa.field(SEQ, pa.int64())])
    rows = pa.concat_tables([p.cast(schema) for p in parts]) if parts else schema.empty_table()
    if len(manifest.segments) > 1:
        rows = newest_per_id(rows, id_column)
    return rows.select([c for c in wanted if c != SEQ])


def newest_per_id(rows: pa.Table, id_column: str) -> pa.Table:
    """The row with the highest `_seq` of each id, sorted by id."""
    if rows.num_rows < 2:
        return rows
    rows = rows.take(pc.sort_indices(rows, sort_keys=[(id_column, "ascending"), (SEQ, "descending")]))
    ids = rows[id_column]
    first = pa.concat_arrays(
        [pa.array([True]), pc.not_equal(ids.slice(1), ids.slice(0, rows.num_rows - 1)).combine_chunks()]
    )
    return rows.filter(first)


class _Cursor:
    """Reads one sorted segment forward, `GROUPS_PER_READ` row groups at a time."""

    def __init__(self, parquet: pq.ParquetFile, columns: list[str], id_column: str) -> None:
        self.parquet, self.columns, self.id_column = parquet, columns, id_column
        self.group = 0
        self.rows: pa.Table | None = None

    def fill(self) -> bool:
        """Buffer the next row groups if nothing is buffered; False once the segment is spent."""
        groups = self.parquet.metadata.num_row_groups
        while (self.rows is None or self.rows.num_rows == 0) and self.group < groups:
            # several groups in one read: their column chunks are fetched concurrently
            batch = list(range(self.group, min(self.group + GROUPS_PER_READ, groups)))
            self.rows = self.parquet.read_row_groups(batch, columns=self.columns)
            self.group += len(batch)
        return self.rows is not None and self.rows.num_rows > 0

    def last(self) -> str:
        assert self.rows is not None
        return str(self.rows[self.id_column][-1].as_py())

    def take_through(self, last: str) -> pa.Table:
        """The buffered rows whose id is at most `last` (a prefix: the segment is sorted)."""
        assert self.rows is not None
        n = pc.sum(pc.less_equal(self.rows[self.id_column], last)).as_py() or 0
        taken, self.rows = self.rows.slice(0, n), self.rows.slice(n)
        return taken


def iter_current(s: Settings, fs: Any, manifest: Manifest, columns: Sequence[str] | None = None) -> Iterator[pa.Table]:
    """Every current row (with `columns` and `_seq`), in chunks sorted by id and disjoint in id.

    A k-way merge over the sorted segments: at most `GROUPS_PER_READ` row groups per segment are
    held, so memory follows the number of segments, not the rows.
    """
    kind = manifest.kind
    id_column = ID_COLUMN[kind]
    wanted = list(dict.fromkeys([id_column, *(columns or SCHEMA[kind].names), SEQ]))
    schema = pa.schema([*(SCHEMA[kind].field(c) for c in wanted if c != SEQ), pa.field(SEQ, pa.int64())])
    cursors = [
        _Cursor(pq.ParquetFile(lake.path(s, seg.key), filesystem=fs), wanted, id_column) for seg in manifest.segments
    ]
    while live := [c for c in cursors if c.fill()]:
        # every row at or below the smallest buffered maximum is buffered somewhere now
        last = min(c.last() for c in live)
        parts = [c.take_through(last).cast(schema) for c in live]
        rows = pa.concat_tables(parts)
        yield rows if len(live) == 1 else newest_per_id(rows, id_column)


def replace_catalog(s: Settings, s3: S3Client, fs: Any, kind: Kind, table: pa.Table, name: str = "full") -> Manifest:
    """Make `table` (unique ids) the whole catalog of `kind`: one new segment, one new manifest."""
    current = read_manifest(s, s3, kind)
    segment = write_segment(s, fs, kind, current.next_seq, name, table)
    now = time.time()
    retired = (*current.retired, *(Retired(seg.key, now) for seg in current.segments))
    return write_manifest(s, s3, Manifest(kind, (segment,), retired=retired), replaces=current)


def move_manifest(s: Settings, s3: S3Client, kind: Kind) -> Manifest | None:
    """Move a manifest kept where manifests were first kept to its own key (None: nothing to move).

    Conditional like every manifest write: of two validators starting together, one moves it.
    """
    current = read_manifest(s, s3, kind)
    if not current.moving:
        return None
    try:
        return write_manifest(s, s3, current, replaces=current)
    except CatalogConflict:
        return None


def legacy_key(s: Settings, kind: Kind) -> str:
    """Where a lake written before segments kept the kind's one snapshot."""
    return f"{s.s3_validated_prefix}metadata/{kind}.parquet"


def adopt_legacy(s: Settings, s3: S3Client, fs: Any, kind: Kind) -> Manifest | None:
    """A lake from before segments: its one snapshot becomes the catalog, once (None: nothing to adopt).

    Only while the kind has no manifest at all, and conditionally: of two validators starting
    together, one adopts it. The old object is left in place; nothing reads it afterwards.
    """
    current = read_manifest(s, s3, kind)
    if current.etag is not None:
        return None
    try:
        table = pq.read_table(lake.path(s, legacy_key(s, kind)), filesystem=fs)
    except (FileNotFoundError, OSError):
        return None
    segment = write_segment(s, fs, kind, current.next_seq, "legacy", table)
    try:
        return write_manifest(s, s3, Manifest(kind, (segment,)), replaces=current)
    except CatalogConflict:
        return None
