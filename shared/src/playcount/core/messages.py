"""Messages between services, and the S3 event envelope, as typed models.

Every body is parsed here first; a body that does not parse raises `PoisonMessage`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Literal, TypeVar
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from playcount.core.errors import PoisonMessage

M = TypeVar("M", bound=BaseModel)

FileKind = Literal["streams", "songs", "users", "replay"]


class S3ObjectRef(BaseModel):
    """One object named by an S3 event record, with its key already URL-decoded."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    event_time: dt.datetime | None = None
    event_name: str = "ObjectCreated:Put"


class _S3Bucket(BaseModel):
    name: str


class _S3Object(BaseModel):
    key: str
    size: int | None = None
    eTag: str | None = None


class _S3Entity(BaseModel):
    bucket: _S3Bucket
    object: _S3Object


class _S3Record(BaseModel):
    eventName: str
    eventTime: dt.datetime | None = None
    s3: _S3Entity


class _S3Notification(BaseModel):
    Records: list[_S3Record] = Field(min_length=1)


def parse_s3_event(body: str) -> list[S3ObjectRef]:
    """Objects created, from an S3 notification body; `[]` for the `s3:TestEvent` S3 sends first."""
    try:
        raw = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PoisonMessage(f"body is not JSON: {exc}") from exc
    if isinstance(raw, dict) and raw.get("Event") == "s3:TestEvent":
        return []
    try:
        notification = _S3Notification.model_validate(raw)
    except ValidationError as exc:
        raise PoisonMessage(f"body is not an S3 event notification: {exc.error_count()} errors") from exc
    return [
        S3ObjectRef(
            bucket=r.s3.bucket.name,
            key=unquote_plus(r.s3.object.key),
            size=r.s3.object.size,
            etag=(r.s3.object.eTag or "").strip('"') or None,
            event_time=r.eventTime,
            event_name=r.eventName,
        )
        for r in notification.Records
        if r.eventName.startswith("ObjectCreated")
    ]


class SourceFile(BaseModel):
    """A file whose data fed a computation, with its upload time (for freshness)."""

    model_config = ConfigDict(frozen=True)

    file_id: str
    uploaded_at: dt.datetime | None = None


class FileValidated(BaseModel):
    """validator -> runner: a file is in the lake (or metadata changed); recompute these dates."""

    model_config = ConfigDict(frozen=True)

    kind: FileKind
    file_id: str
    source_key: str
    dates: list[dt.date]
    report_key: str
    uploaded_at: dt.datetime | None = None
    validated_at: dt.datetime


class KpiResultReady(BaseModel):
    """runner -> writer: the full KPIs of one date, at `version`, are stored at `result_key`."""

    model_config = ConfigDict(frozen=True)

    date: dt.date
    version: int = Field(ge=1)
    result_key: str
    computed_at: dt.datetime
    files: list[SourceFile] = Field(default_factory=list)


def parse_model(model: type[M], body: str) -> M:
    """Parse a message body into `model`, or raise `PoisonMessage`."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise PoisonMessage(f"body is not a {model.__name__}: {exc.error_count()} errors") from exc
