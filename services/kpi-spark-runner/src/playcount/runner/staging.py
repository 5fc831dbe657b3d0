"""Bring exactly the needed lake partitions within Spark's reach.

`stage` mode copies the date partitions and metadata snapshots to a local directory with
pyarrow; `s3a` mode returns `s3a://` URLs for Spark to read in place on a cluster.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pyarrow import fs as pafs

from playcount.core import lake
from playcount.core.config import Settings
from playcount.runner.compute import Inputs


def _exists(filesystem: Any, path: str) -> bool:
    return bool(filesystem.get_file_info(path).type != pafs.FileType.NotFound)


def _has_files(filesystem: Any, path: str) -> bool:
    info = filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return any(i.type == pafs.FileType.File and i.path.endswith(".parquet") for i in info)


def stage(settings: Settings, filesystem: Any, dates: Iterable[dt.date], workdir: Path) -> Inputs:
    """Copy the partitions of `dates` and the metadata snapshots under `workdir`."""
    local = pafs.LocalFileSystem()
    event_paths = []
    for day in sorted(set(dates)):
        source = lake.path(settings, lake.date_partition(settings, day)).rstrip("/")
        if not _has_files(filesystem, source):
            continue
        target = workdir / f"listen_date={day.isoformat()}"
        target.mkdir(parents=True, exist_ok=True)
        pafs.copy_files(
            source, str(target), source_filesystem=filesystem, destination_filesystem=local, use_threads=True
        )
        event_paths.append(str(target))
    return Inputs(
        event_paths=event_paths,
        songs_path=_copy_one(settings, filesystem, lake.songs_key(settings), workdir / "songs.parquet"),
        users_path=_copy_one(settings, filesystem, lake.users_key(settings), workdir / "users.parquet"),
    )


def _copy_one(settings: Settings, filesystem: Any, key: str, target: Path) -> str | None:
    source = lake.path(settings, key)
    if not _exists(filesystem, source):
        return None
    pafs.copy_files(source, str(target), source_filesystem=filesystem, destination_filesystem=pafs.LocalFileSystem())
    return str(target)


def s3a_inputs(settings: Settings, filesystem: Any, dates: Iterable[dt.date]) -> Inputs:
    """`s3a://` locations, for a cluster reading the lake in place."""
    base = f"s3a://{settings.s3_bucket}/"
    paths = [
        base + lake.date_partition(settings, d)
        for d in sorted(set(dates))
        if _has_files(filesystem, lake.path(settings, lake.date_partition(settings, d)).rstrip("/"))
    ]
    songs = lake.songs_key(settings)
    users = lake.users_key(settings)
    return Inputs(
        event_paths=paths,
        songs_path=base + songs if _exists(filesystem, lake.path(settings, songs)) else None,
        users_path=base + users if _exists(filesystem, lake.path(settings, users)) else None,
    )


def cleanup(workdir: Path) -> None:
    shutil.rmtree(workdir, ignore_errors=True)
