"""Fixtures for the validator's tests: the test bucket as a small helper, a validator in-process,
and known metadata (songs t1..t3, users u1..u3) already validated."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from playcount.core import aws, lake, parquet
from playcount.core.config import Settings
from playcount.core.messages import S3ObjectRef, parse_s3_event
from playcount.core.reports import FileReport
from playcount.core.resources import S3_EVENTS, resources
from playcount.validator import storage
from playcount.validator.handler import Validator
from playcount.validator.main import build_validator

SONGS = (
    b"track_id,track_name,artists,track_genre,duration_ms\n"
    b"t1,One,A, Pop ,200000\n"
    b"t2,Two,B,ROCK,180000\n"
    b"t3,Three,C,jazz,240000\n"
)
USERS = b"user_id,user_age,user_country,created_at\nu1,30,US,2020-01-01\nu2,41,GB,2021-05-02\nu3,25,DE,2022-03-04\n"
HEADER = "user_id,track_id,listen_time\n"


class Bucket:
    """The test's bucket: upload, read back, list, and the S3 -> SQS notifications it produced."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.s3 = aws.client(settings, "s3")
        self.sqs = aws.client(settings, "sqs")
        self.name = settings.s3_bucket

    def put(self, key: str, body: bytes | str) -> S3ObjectRef:
        data = body.encode() if isinstance(body, str) else body
        etag = self.s3.put_object(Bucket=self.name, Key=key, Body=data)["ETag"].strip('"')
        return S3ObjectRef(bucket=self.name, key=key, etag=etag, size=len(data))

    def metadata(self) -> list[S3ObjectRef]:
        """Upload the test songs (t1..t3) and users (u1..u3); not judged yet."""
        s = self.settings
        return [self.put(f"{s.songs_prefix}songs.csv", SONGS), self.put(f"{s.users_prefix}users.csv", USERS)]

    def stream(self, name: str, body: bytes | str) -> S3ObjectRef:
        return self.put(f"{self.settings.s3_raw_data_prefix}{name}", body)

    def read(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=self.name, Key=key)["Body"].read())

    def json(self, key: str) -> Any:
        return json.loads(self.read(key))

    def rows(self, key: str) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(self.read(key).decode())))

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def exists(self, key: str) -> bool:
        return key in self.keys(key)

    def snapshot(self, prefix: str = "") -> dict[str, bytes]:
        """Every object under `prefix` with its content (reports excluded: they carry timings)."""
        return {k: self.read(k) for k in self.keys(prefix) if not k.endswith(".json")}

    def report(self, ref: S3ObjectRef) -> FileReport:
        fid = lake.file_id(ref.key, ref.etag)
        return FileReport.model_validate_json(self.read(lake.report_key(self.settings, fid)))

    def events(self) -> pa.Table:
        """Every event in the lake, with its partition date and file (as the runner would read them)."""
        root = lake.path(self.settings, lake.streams_root(self.settings))
        fs = parquet.filesystem(self.settings)
        if not self.keys(lake.streams_root(self.settings)):
            return pa.table({"user_id": [], "track_id": [], "listen_time": []})
        return ds.dataset(root, filesystem=fs, format="parquet", partitioning="hive").to_table()

    def notifications(self, wait: int = 1) -> list[S3ObjectRef]:
        """Drain the s3-events queue: the objects its notifications name (test events skipped)."""
        url = aws.queue_url(self.sqs, resources(self.settings).queue(S3_EVENTS).name)
        refs: list[S3ObjectRef] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
            messages = got.get("Messages", [])
            if not messages:
                return refs
            for m in messages:
                refs += parse_s3_event(m["Body"])
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture
def bucket(settings: Settings) -> Bucket:
    return Bucket(settings)


@pytest.fixture
def validator(settings: Settings) -> Validator:
    return build_validator(settings)


@pytest.fixture
def known(validator: Validator, bucket: Bucket) -> Callable[..., FileReport]:
    """Songs t1..t3 and users u1..u3 validated; returns a function to judge a stream body."""
    for ref in bucket.metadata():
        report = validator.handle(ref)
        assert report is not None and report.status == "accepted"

    def judge(body: bytes | str, name: str = "file.csv") -> FileReport:
        report = validator.handle(bucket.stream(name, body))
        assert report is not None
        return report

    return judge


@pytest.fixture
def crash_before_report(
    validator: Validator, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Callable[[S3ObjectRef], None]:
    """Judge an object with a validator killed right before it writes the report (all before is durable)."""

    def run(ref: S3ObjectRef) -> None:
        report_key = lake.report_key(settings, lake.file_id(ref.key, ref.etag))
        real_put = storage.put_json

        def put(s: Settings, s3: Any, key: str, value: Any) -> None:
            if key == report_key:
                raise SystemExit("killed before the report")
            real_put(s, s3, key, value)

        monkeypatch.setattr(storage, "put_json", put)
        with pytest.raises(SystemExit):
            validator.handle(ref)
        monkeypatch.setattr(storage, "put_json", real_put)

    return run
