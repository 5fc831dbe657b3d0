"""The current metadata snapshots, encoded and cached in Spark until a snapshot changes.

A batch asks `Catalog.current()`. It costs one HEAD per snapshot, and the snapshots are
re-read, re-encoded and re-cached only when an ETag differs. A songs fix therefore reaches
the very batch that its "file validated" message triggers. The frames come from
`createDataFrame`, not from a path, so executors on other hosts get them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import structlog
from botocore.exceptions import ClientError
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from playcount.core import lake
from playcount.core.config import Settings
from playcount.runner.dims import SONG_COLUMNS, SONGS_SCHEMA, USER_COLUMNS, USERS_SCHEMA, Dimensions, encode

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DimFrames:
    """Dimensions on the driver, and the same tables cached in Spark for broadcast joins."""

    dims: Dimensions
    songs: DataFrame
    song_artists: DataFrame
    users: DataFrame

    def release(self) -> None:
        for frame in (self.songs, self.song_artists, self.users):
            frame.unpersist()


def load(spark: SparkSession, songs: pa.Table, users: pa.Table) -> DimFrames:
    """Encode the snapshots and cache their dimension tables in Spark."""
    dims = encode(songs, users)
    frames = [
        spark.createDataFrame(table).persist(StorageLevel.MEMORY_AND_DISK)
        for table in (dims.songs, dims.song_artists, dims.users)
    ]
    for frame in frames:
        frame.count()  # materialize now, so a batch only reads memory
    return DimFrames(dims, *frames)


class Catalog:
    """Snapshots from the lake (`validated-data/metadata/`), reloaded when their ETags change."""

    def __init__(self, settings: Settings, s3: Any, spark: SparkSession) -> None:
        self.settings = settings
        self.s3 = s3
        self.spark = spark
        self._etags: tuple[str | None, str | None] | None = None
        self._frames: DimFrames | None = None

    def current(self) -> DimFrames:
        keys = (lake.songs_key(self.settings), lake.users_key(self.settings))
        etags = (self._etag(keys[0]), self._etag(keys[1]))
        if self._frames is None or etags != self._etags:
            songs, songs_etag = self._read(keys[0], SONG_COLUMNS, SONGS_SCHEMA)
            users, users_etag = self._read(keys[1], USER_COLUMNS, USERS_SCHEMA)
            frames = load(self.spark, songs, users)
            if self._frames is not None:
                self._frames.release()
            # the ETags of the bytes actually read: a snapshot replaced since the HEAD reloads next time
            self._frames, self._etags = frames, (songs_etag, users_etag)
            log.info("catalog.loaded", songs=songs.num_rows, users=users.num_rows)
        return self._frames

    def close(self) -> None:
        if self._frames is not None:
            self._frames.release()
            self._frames = None

    def _etag(self, key: str) -> str | None:
        try:
            return str(self.s3.head_object(Bucket=self.settings.s3_bucket, Key=key)["ETag"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def _read(self, key: str, columns: tuple[str, ...], schema: pa.Schema) -> tuple[pa.Table, str | None]:
        try:
            response = self.s3.get_object(Bucket=self.settings.s3_bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return schema.empty_table(), None
            raise
        table = pq.read_table(pa.BufferReader(response["Body"].read()))
        return table.select([c for c in columns if c in table.column_names]), str(response["ETag"])
