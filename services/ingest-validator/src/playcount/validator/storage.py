"""The validator's local work directory and the two writes several rooms share.

`upload` streams a local file to a lake path in 8 MiB chunks (memory stays flat whatever the
file's size); `put_json` stores a small JSON document (reports). Neither judges nor decides
anything: the key, and when to write it, are the caller's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playcount.core.config import Settings

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client


def work_dir(settings: Settings) -> str:
    """The validator's scratch directory (created if missing)."""
    path = Path(settings.work_dir) / "validator"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def upload(fs: Any, local: Path, target: str) -> None:
    """Copy a local file to `target` (a path on the lake's filesystem `fs`)."""
    with open(local, "rb") as src, fs.open_output_stream(target) as dst:
        while chunk := src.read(8 << 20):
            dst.write(chunk)


def put_json(settings: Settings, s3: S3Client, key: str, value: Any) -> None:
    s3.put_object(
        Bucket=settings.s3_bucket,
        Key=key,
        Body=json.dumps(value, indent=1).encode(),
        ContentType="application/json",
    )
