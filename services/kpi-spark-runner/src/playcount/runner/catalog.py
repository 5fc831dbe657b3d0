"""The catalog's segments within Spark's reach, refreshed when a manifest's ETag changes.

A batch asks `Catalog.current()`: one GET of each kind's manifest (`core.snapshots`). Segments
are immutable and named by sequence, so in `stage` mode a local copy is downloaded once, when
a manifest first lists it, and removed when no manifest lists it any more. A songs fix
therefore reaches the very batch that its "file validated" message triggers, and a 100-row
correction costs a 100-row download. In `s3a` mode the segments are read in place.

Nothing here reads a row: the job scans the segments itself and keeps only the rows whose id
its batch references (`compute._taking_part`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from botocore.exceptions import ClientError

from playcount.core import snapshots
from playcount.core.s3 import is_missing
from playcount.runner.compute import Metadata
from playcount.runner.config import RunnerSettings

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

log = structlog.get_logger(__name__)
_ATTEMPTS = 3


class Catalog:
    """The current segments of songs and users: local files (stage) or `s3a://` URLs."""

    def __init__(self, settings: RunnerSettings, s3: S3Client, work_dir: Path) -> None:
        self.settings = settings
        self.s3 = s3
        work_dir.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="catalog-", dir=work_dir))
        self._etags: dict[str, str | None] = {}
        self._paths: dict[str, tuple[list[str], int]] = {}

    def current(self) -> Metadata:
        (songs, song_rows), (users, user_rows) = self._current("songs"), self._current("users")
        return Metadata(songs=songs, users=users, song_rows=song_rows, user_rows=user_rows)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _current(self, kind: snapshots.Kind) -> tuple[list[str], int]:
        """The kind's segment paths, oldest first, and their rows."""
        for attempt in range(_ATTEMPTS):
            manifest = snapshots.read_manifest(self.settings, self.s3, kind)
            if kind in self._paths and manifest.etag == self._etags.get(kind):
                return self._paths[kind]
            try:
                paths = self._sync(manifest)
            except _SegmentGone:  # compacted away after the manifest was read: read the new one
                if attempt + 1 == _ATTEMPTS:
                    raise
                continue
            self._etags[kind], self._paths[kind] = manifest.etag, (paths, manifest.rows)
            log.info("catalog.loaded", kind=kind, segments=len(paths), rows=manifest.rows)
            return self._paths[kind]
        raise AssertionError("unreachable")

    def _sync(self, manifest: snapshots.Manifest) -> list[str]:
        if self.settings.lake_read_mode == "s3a":
            return [f"s3a://{self.settings.s3_bucket}/{s.key}" for s in manifest.segments]
        directory = self.root / manifest.kind
        directory.mkdir(exist_ok=True)
        wanted = {Path(s.key).name: s.key for s in manifest.segments}
        for local in directory.iterdir():
            if local.name not in wanted:
                local.unlink()
        for name, key in wanted.items():
            target = directory / name
            if not target.exists():
                self._download(key, target)
        return [str(directory / Path(s.key).name) for s in manifest.segments]

    def _download(self, key: str, target: Path) -> None:
        partial = target.with_name(f".{target.name}.part")
        try:
            self.s3.download_file(self.settings.s3_bucket, key, str(partial))
        except ClientError as exc:
            if is_missing(exc):
                raise _SegmentGone(key) from exc
            raise
        os.replace(partial, target)


class _SegmentGone(Exception):
    """A segment that the manifest just read named is no longer in the lake."""
