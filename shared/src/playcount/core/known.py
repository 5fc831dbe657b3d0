"""The ids a kind's catalog knows, in memory, cached by the manifest's ETag.

`KnownIds.current()` costs one GET of the manifest. The index is rebuilt only when the manifest
changed, and then incrementally when it can be: ids are never removed by an upsert or a
compaction, so a manifest that only adds upsert segments (newer than any segment already
read) or merges segments already read adds just the new ids of those upserts, as a small extra
part. A full rebuild (a k-way merge of the segments' id columns, `snapshots.iter_current`)
happens on first use, when parts pile up, or when the catalog was replaced.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import structlog

from playcount.core import lake, snapshots
from playcount.core.config import Settings
from playcount.core.idindex import HashFn, IdIndex, hash_ids

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

log = structlog.get_logger(__name__)

MAX_PARTS = 8  # parts beyond the first before a rebuild
MAX_EXTRA_SHARE = 0.25  # ids in the extra parts, as a share of the first, before a rebuild


@dataclass(frozen=True)
class KnownSet:
    """An immutable view of the known ids: disjoint parts, each an exact `IdIndex`."""

    parts: tuple[IdIndex, ...]

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def contains(self, values: pa.Array | pa.ChunkedArray) -> pa.Array:
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        found = self.parts[0].contains(values) if self.parts else pa.repeat(False, len(values))
        for part in self.parts[1:]:
            found = pc.or_(found, part.contains(values))
        return found


class KnownIds:
    """The current ids of one kind (see the module doc). Safe to share between threads."""

    def __init__(
        self, settings: Settings, s3: S3Client, fs: Any, kind: snapshots.Kind, hash_fn: HashFn = hash_ids
    ) -> None:
        self.settings, self.s3, self.fs, self.kind = settings, s3, fs, kind
        self._hash = hash_fn
        self._lock = threading.Lock()
        self._manifest: snapshots.Manifest | None = None
        self._known: KnownSet | None = None
        self.rebuilds = 0  # full rebuilds so far (tests and logs)

    def current(self) -> KnownSet | None:
        """The ids of the current catalog; None when the kind has no catalog yet."""
        manifest = snapshots.read_manifest(self.settings, self.s3, self.kind)
        with self._lock:
            if self._manifest is not None and manifest.etag == self._manifest.etag:
                return self._known
            if not manifest.segments:
                self._manifest, self._known = manifest, None
                return None
            added = self._added(manifest)
            if self._known is None or added is None:
                self._known = None  # let the old index go before the new one is built
                self._known = self._rebuild(manifest)
            elif added:
                self._known = self._extend(self._known, manifest, added)
            self._manifest = manifest
            return self._known

    def _added(self, manifest: snapshots.Manifest) -> list[snapshots.Segment] | None:
        """The upsert segments `manifest` adds to the one indexed, or None when it needs a rebuild."""
        if self._manifest is None or not self._manifest.segments:
            return None
        old = {s.key for s in self._manifest.segments}
        newest = max(s.seq for s in self._manifest.segments)
        added, merges = [], 0
        for segment in manifest.segments:
            if segment.key in old:
                continue
            compacted = segment.name.startswith(snapshots.COMPACTED)
            if compacted and segment.seq <= newest:
                merges += 1  # a merge of segments already indexed: no new ids
                continue
            if compacted or segment.seq <= newest:
                return None  # merged with segments never indexed
            added.append(segment)
        if not merges and old - {s.key for s in manifest.segments}:
            return None  # segments left without a merge: the catalog was replaced
        return added

    def _rebuild(self, manifest: snapshots.Manifest) -> KnownSet:
        id_column = snapshots.ID_COLUMN[self.kind]
        chunks = (rows[id_column] for rows in snapshots.iter_current(self.settings, self.fs, manifest, [id_column]))
        index = IdIndex.build(chunks, self._hash)
        self.rebuilds += 1
        log.info("known_ids.built", kind=self.kind, ids=len(index), mb=round(index.nbytes / 2**20, 1))
        return KnownSet((index,))

    def _extend(self, known: KnownSet, manifest: snapshots.Manifest, added: Sequence[snapshots.Segment]) -> KnownSet:
        id_column = snapshots.ID_COLUMN[self.kind]
        ids = [
            pq.read_table(lake.path(self.settings, s.key), filesystem=self.fs, columns=[id_column])[id_column]
            for s in added
        ]
        new = pa.chunked_array(ids, pa.string()).combine_chunks()
        new = new.filter(pc.invert(known.contains(new)))
        if len(new) == 0:
            return known
        parts = (*known.parts, IdIndex.build([new], self._hash))
        if len(parts) > MAX_PARTS + 1 or sum(len(p) for p in parts[1:]) > MAX_EXTRA_SHARE * len(parts[0]):
            return self._rebuild(manifest)
        return KnownSet(parts)
