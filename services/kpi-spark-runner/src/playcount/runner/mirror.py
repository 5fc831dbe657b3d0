"""Bring exactly the needed date partitions within Spark's reach.

`stage` mode (the default) keeps a local mirror of the partitions that batches touch. Each
batch lists a date's partition (one LIST per date). It downloads only the files that are
new or whose ETag changed, and drops the local files that left the lake. A date that gets a
10k-row file every second therefore costs one small download per batch, not a copy of the
whole day. The mirror keeps the most recently used `keep_dates` dates. Spark reads the local
directories, so this mode needs the executors to share the driver's disk (local mode, or
workers on the same host).

`s3a` mode returns `s3a://` URLs for a cluster to read in place.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from playcount.core import lake
from playcount.core.config import Settings
from playcount.runner.compute import Inputs

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client


@dataclass(frozen=True)
class RemoteFile:
    key: str
    etag: str
    size: int


def list_partition(settings: Settings, s3: S3Client, day: dt.date) -> list[RemoteFile]:
    """The Parquet files of one date partition, with their ETags and sizes."""
    files = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=settings.s3_bucket, Prefix=lake.date_partition(settings, day)):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(".parquet"):
                files.append(RemoteFile(obj["Key"], obj["ETag"], int(obj["Size"])))
    return files


class LakeMirror:
    """A local copy of the date partitions recent batches touched, refreshed by ETag."""

    def __init__(self, settings: Settings, s3: S3Client, work_dir: Path, keep_dates: int = 64) -> None:
        self.settings = settings
        self.s3 = s3
        work_dir.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="mirror-", dir=work_dir))
        self.keep_dates = keep_dates
        self._etags: dict[dt.date, dict[str, str]] = {}
        self._recent: OrderedDict[dt.date, None] = OrderedDict()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="mirror")

    def inputs(self, dates: Iterable[dt.date]) -> Inputs:
        """Sync the partitions of `dates` and name the local directories that hold events."""
        wanted = sorted(set(dates))
        listed = self._pool.map(lambda d: list_partition(self.settings, self.s3, d), wanted)
        listings = dict(zip(wanted, listed, strict=True))
        downloads = []
        for day in wanted:
            downloads += self._plan(day, listings[day])
        list(self._pool.map(self._download, downloads))
        for day, remote in listings.items():
            self._etags[day] = {Path(f.key).name: f.etag for f in remote}
            self._recent.pop(day, None)
            self._recent[day] = None
        self._evict(keep=set(wanted))
        return Inputs(
            event_paths=[str(self._dir(d)) for d in wanted if listings[d]],
            input_bytes=sum(f.size for files in listings.values() for f in files),
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def _dir(self, day: dt.date) -> Path:
        return self.root / f"listen_date={day.isoformat()}"

    def _plan(self, day: dt.date, remote: list[RemoteFile]) -> list[tuple[str, Path]]:
        """The downloads that bring one date up to date; local files that left the lake go."""
        directory = self._dir(day)
        directory.mkdir(parents=True, exist_ok=True)
        known = self._etags.get(day, {})
        names = {Path(f.key).name for f in remote}
        for local in directory.iterdir():
            if local.name not in names:
                local.unlink()
                known.pop(local.name, None)
        return [(f.key, directory / Path(f.key).name) for f in remote if known.get(Path(f.key).name) != f.etag]

    def _download(self, job: tuple[str, Path]) -> None:
        key, target = job
        # a dot-file is invisible to Spark until it is complete and renamed
        partial = target.with_name(f".{target.name}.part")
        self.s3.download_file(self.settings.s3_bucket, key, str(partial))
        os.replace(partial, target)

    def _evict(self, keep: set[dt.date]) -> None:
        while len(self._recent) > self.keep_dates:
            oldest = next((d for d in self._recent if d not in keep), None)
            if oldest is None:  # this batch alone needs more dates than the mirror keeps
                return
            del self._recent[oldest]
            self._etags.pop(oldest, None)
            shutil.rmtree(self._dir(oldest), ignore_errors=True)


def s3a_inputs(settings: Settings, s3: S3Client, dates: Iterable[dt.date]) -> Inputs:
    """`s3a://` locations of the partitions that hold files, for a cluster reading in place."""
    base = f"s3a://{settings.s3_bucket}/"
    paths, size = [], 0
    for day in sorted(set(dates)):
        files = list_partition(settings, s3, day)
        if files:
            paths.append(base + lake.date_partition(settings, day))
            size += sum(f.size for f in files)
    return Inputs(event_paths=paths, input_bytes=size)
