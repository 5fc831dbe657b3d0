"""The lake's Parquet side: its columns, and pyarrow's S3 filesystem on the configured endpoint.

Where each object lives is `core.lake` (plain strings): processes that only name objects (the
writer, the API) never import pyarrow.
"""

from __future__ import annotations

from urllib.parse import urlparse

import pyarrow as pa
from pyarrow import fs

from playcount.core.config import Settings

# the lake's columns: written by the validator, read by the runner
EVENTS = pa.schema([("user_id", pa.string()), ("track_id", pa.string()), ("listen_time", pa.timestamp("us", tz="UTC"))])
SONGS_SNAPSHOT = pa.schema(
    [
        ("track_id", pa.string()),
        ("track_name", pa.string()),
        ("artists", pa.string()),
        ("track_genre", pa.string()),
        ("duration_ms", pa.int64()),
        ("popularity", pa.int64()),
    ]
)
USERS_SNAPSHOT = pa.schema(
    [
        ("user_id", pa.string()),
        ("user_name", pa.string()),
        ("user_age", pa.int64()),
        ("user_country", pa.string()),
        ("created_at", pa.string()),
    ]
)


def filesystem(s: Settings) -> fs.S3FileSystem:
    """pyarrow's S3 filesystem on the configured endpoint (credentials from the environment)."""
    kwargs: dict[str, object] = {"region": s.aws_region}
    if s.aws_endpoint_url:
        url = urlparse(s.aws_endpoint_url)
        kwargs["endpoint_override"] = url.netloc
        kwargs["scheme"] = url.scheme or "http"
        kwargs["allow_bucket_creation"] = False
    return fs.S3FileSystem(**kwargs)
