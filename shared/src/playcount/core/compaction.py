"""Compaction: keep a catalog's segments few, and delete segments no reader can still need.

Each upsert adds a segment (`core.snapshots`), and a reader reads every listed segment, so the
segments are merged size-tiered: walking from the newest, a run of segments absorbs the next
older one while that one is small (fewer than `SMALL_ROWS` rows) or at most `GROWTH` times the
run. Each kept segment therefore outweighs all newer ones `GROWTH`-fold, which bounds their
number by about log_GROWTH(catalog rows / SMALL_ROWS) + 2, and each row is rewritten about that
many times over its life. A 100-row correction to a 5M-row base merges with the other small
segments only; the base is rewritten once the newer rows add up to a quarter of it.

A merge is a k-way merge of the sorted segments (`snapshots.iter_current`): one row group per
segment in memory, written in `ROW_GROUP_ROWS` groups, each surviving row with its own `_seq`,
so every id's current row is the same before and after. The merged segments are listed under
`retired` and deleted `RETAIN_SECONDS` later; a segment no manifest ever listed (its writer died
before the manifest) is deleted once it is that old.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from playcount.core import lake
from playcount.core.config import Settings
from playcount.core.snapshots import (
    COMPACTED,
    ROW_GROUP_ROWS,
    Kind,
    Manifest,
    Retired,
    Segment,
    iter_current,
    prefix,
    segment_key,
    segment_schema,
    write_manifest,
)

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

# a dropped segment stays readable this long: longer than any reader holds a manifest it read
RETAIN_SECONDS = 3600.0
SMALL_ROWS = 2 * ROW_GROUP_ROWS
GROWTH = 4


def plan_compaction(segments: Sequence[Segment], mergeable: Callable[[Segment], bool]) -> tuple[Segment, ...]:
    """The newest segments to merge into one (two or more), or none.

    Walking from the newest, a run absorbs the next older segment while that one has fewer than
    `SMALL_ROWS` rows or at most `GROWTH` times the run's rows. A 100-row correction never pulls
    in a 5M-row base; the base is rewritten once the newer rows add up to a quarter of it. Only
    `mergeable` segments take part, and the walk stops at the first one that is not (a file not
    yet finished keeps its segment, and everything older, as it is).
    """
    run: list[Segment] = []
    rows = 0
    for segment in reversed(segments):
        if run and segment.rows >= SMALL_ROWS and segment.rows > GROWTH * rows:
            break
        if not mergeable(segment):
            break
        run.insert(0, segment)
        rows += segment.rows
    return tuple(run) if len(run) > 1 else ()


def compact(
    s: Settings,
    s3: S3Client,
    fs: Any,
    manifest: Manifest,
    mergeable: Callable[[Segment], bool] = lambda _: True,
    now: float | None = None,
) -> Manifest:
    """Merge the planned run of segments into one, and delete what readers can no longer need.

    The merged segment keeps each current row with its own `_seq`, so every id's current row is
    the same before and after. Returns the manifest now stored (the same one when nothing changed).
    """
    now = time.time() if now is None else now
    run = plan_compaction(manifest.segments, mergeable)
    expired = [r for r in manifest.retired if r.at + RETAIN_SECONDS <= now]
    if not run and not expired:
        _delete_orphans(s, s3, manifest, now)
        return manifest
    segments, retired = list(manifest.segments), [r for r in manifest.retired if r not in expired]
    if run:
        merged = _merge(s, fs, manifest.kind, run)
        segments = [*segments[: -len(run)], merged]
        retired += [Retired(seg.key, now) for seg in run]
    stored = write_manifest(s, s3, Manifest(manifest.kind, tuple(segments), retired=tuple(retired)), replaces=manifest)
    for r in expired:
        s3.delete_object(Bucket=s.s3_bucket, Key=r.key)
    _delete_orphans(s, s3, stored, now)
    return stored


def _merge(s: Settings, fs: Any, kind: Kind, run: Sequence[Segment]) -> Segment:
    """One segment holding the current rows of `run`, named after the keys it merges."""
    digest = hashlib.sha256("\n".join(seg.key for seg in run).encode()).hexdigest()[:16]
    key = segment_key(s, kind, max(seg.seq for seg in run), f"{COMPACTED}{digest}")
    schema = segment_schema(kind)
    rows = 0
    pending: list[pa.Table] = []
    buffered = 0
    with pq.ParquetWriter(lake.path(s, key), schema, filesystem=fs) as writer:
        for chunk in iter_current(s, fs, Manifest(kind, tuple(run))):
            pending.append(chunk.select(schema.names).cast(schema))
            buffered += chunk.num_rows
            if buffered >= ROW_GROUP_ROWS:
                table = pa.concat_tables(pending)
                whole = table.num_rows - table.num_rows % ROW_GROUP_ROWS
                writer.write_table(table.slice(0, whole), row_group_size=ROW_GROUP_ROWS)
                pending, buffered = [table.slice(whole)], table.num_rows - whole
            rows += chunk.num_rows
        if buffered:
            writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP_ROWS)
    return Segment(key, max(seg.seq for seg in run), rows)


def _delete_orphans(s: Settings, s3: S3Client, manifest: Manifest, now: float) -> None:
    """Delete segment objects no manifest lists (a writer died before its manifest), once old enough."""
    if manifest.etag is None:  # no manifest read: an empty `known` would make every segment an orphan
        return
    known = {seg.key for seg in manifest.segments} | {r.key for r in manifest.retired}
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=s.s3_bucket, Prefix=prefix(s, manifest.kind))
    for page in pages:
        for obj in page.get("Contents", []):
            old = obj["LastModified"].timestamp() + RETAIN_SECONDS <= now
            if obj["Key"].endswith(".parquet") and obj["Key"] not in known and old:
                s3.delete_object(Bucket=s.s3_bucket, Key=obj["Key"])
