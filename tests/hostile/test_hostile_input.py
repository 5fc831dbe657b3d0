"""Hostile input (issue 7): every bad file has one expected outcome, and none can hurt the service.

The corpus is kept as data in `corpus/` with its expected outcomes in `expected.json`; the huge
cases (a 50 MB line, thousands of columns, 10k-character ids) are generated here instead.
`test_each_file_has_its_expected_outcome` judges each one in-process through the emulator's S3;
`test_no_input_crashes_the_service_or_blocks_the_queue` uploads them all to the running
validator, each followed by a good file, and proves every good file still flows.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from playcount.core import aws, lake
from playcount.core.config import Settings
from playcount.core.messages import S3ObjectRef
from playcount.core.reports import FileReport
from playcount.core.resources import S3_EVENTS, resources
from playcount.validator.main import build_validator
from tests.support.helpers import wait_for

HERE = Path(__file__).parent
EXPECTED: dict[str, dict[str, Any]] = {
    k: v for k, v in json.loads((HERE / "expected.json").read_text()).items() if not k.startswith("_")
}
HEADER = b"user_id,track_id,listen_time\n"
ROW = b"u1,t1,2024-01-01 10:00:00\n"
SONGS = b"track_id,track_name,artists,track_genre,duration_ms\nt1,One,A,pop,200000\nt2,Two,B,rock,180000\n"
USERS = b"user_id,user_age,user_country,created_at\nu1,30,US,2020-01-01\nu2,41,GB,2021-05-02\n"
MB = 1 << 20


def _columns(n: int) -> bytes:
    names = [f"extra_{i}" for i in range(n)] + ["user_id", "track_id", "listen_time"]
    return (",".join(names) + "\n" + ",".join(["x"] * n + ["u1", "t1", "2024-01-01 10:00:00"]) + "\n").encode()


GENERATED: dict[str, tuple[Callable[[], bytes], dict[str, Any]]] = {
    "line_50mb.csv": (
        lambda: HEADER + ROW + b"u1," + b"x" * (50 * MB) + b",2024-01-01 11:00:00\n",
        {"status": "rejected", "reason": "line_too_long"},
    ),
    "header_50mb.csv": (
        lambda: b"user_id,track_id,listen_time," + b"y" * (50 * MB) + b"\n" + ROW,
        {"status": "rejected", "reason": "header_too_long"},
    ),
    "columns_5000.csv": (lambda: _columns(5000), {"status": "accepted", "read": 1, "accepted": 1, "quarantined": {}}),
    "columns_20000.csv": (lambda: _columns(20_000), {"status": "rejected", "reason": "too_many_columns"}),
    "fields_5000_per_row.csv": (
        lambda: HEADER + (",".join(["v"] * 5000) + "\n").encode() * 100 + ROW,
        {"status": "accepted", "read": 101, "accepted": 1, "quarantined": {"malformed_row": 100}},
    ),
    "ids_10k_chars.csv": (
        lambda: HEADER + b"u" * 10_000 + b",t1,2024-01-01 10:00:00\nu1," + b"t" * 10_000 + b",2024-01-01 10:00:00\n",
        {"status": "accepted", "read": 2, "accepted": 0, "quarantined": {"bad_user_id": 1, "bad_track_id": 1}},
    ),
}
ODD_KEYS = ["hostile keys/with space.csv", "plus+sign.csv", "100%25 and %.csv", "ünï/日本語 ✓.csv", "../dot/./dot.csv"]


def _corpus() -> dict[str, tuple[Callable[[], bytes], dict[str, Any]]]:
    files = {name: ((lambda p=HERE / "corpus" / name: p.read_bytes()), want) for name, want in EXPECTED.items()}
    return {**files, **GENERATED}


CASES = _corpus()


def _put(s3: Any, settings: Settings, key: str, body: bytes) -> S3ObjectRef:
    etag = s3.put_object(Bucket=settings.s3_bucket, Key=key, Body=body)["ETag"].strip('"')
    return S3ObjectRef(bucket=settings.s3_bucket, key=key, etag=etag)


def _check(report: FileReport | dict[str, Any], want: dict[str, Any]) -> None:
    got = report if isinstance(report, dict) else report.model_dump(mode="json")
    assert got["status"] == want["status"], got
    if want["status"] == "rejected":
        assert got["reason"] == want["reason"], got
        return
    assert (got["rows_read"], got["rows_accepted"]) == (want["read"], want["accepted"]), got
    assert got["quarantined_by_reason"] == want["quarantined"], got


def test_the_corpus_and_its_expectations_agree():
    on_disk = {p.name for p in (HERE / "corpus").iterdir() if not p.name.startswith(".")}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_file_has_its_expected_outcome(settings, name):
    s3 = aws.client(settings, "s3")
    validator = build_validator(settings)
    for key, body in ((f"{settings.songs_prefix}songs.csv", SONGS), (f"{settings.users_prefix}users.csv", USERS)):
        validator.handle(_put(s3, settings, key, body))
    make, want = CASES[name]
    body = make()
    report = validator.handle(_put(s3, settings, f"{settings.s3_raw_data_prefix}{name}", body))
    _check(report, want)
    if want["status"] == "rejected":  # the original is kept, byte for byte, beside its report
        got = s3.get_object(Bucket=settings.s3_bucket, Key=report.rejected_file_key)["Body"].read()
        assert got == body


def test_formulas_are_kept_verbatim_and_never_evaluated(settings):
    s3 = aws.client(settings, "s3")
    validator = build_validator(settings)
    body = (HERE / "corpus" / "formulas.csv").read_bytes()
    report = validator.handle(_put(s3, settings, f"{settings.s3_raw_data_prefix}formulas.csv", body))
    quarantined = s3.get_object(Bucket=settings.s3_bucket, Key=report.rejected_rows_key)["Body"].read().decode()
    kept = [(r["user_id"], r["track_id"], r["listen_time"]) for r in csv.DictReader(io.StringIO(quarantined))]
    sent = [tuple(r) for r in csv.reader(io.StringIO(body.decode()))][1:]
    assert kept == sent
    assert ("u1", "=1+1", "2024-01-01 10:00:00") in kept and ("u1", "t1", "=NOW()") in kept


def test_no_input_crashes_the_service_or_blocks_the_queue(settings, stack):
    # GIVEN the validator running, with metadata validated
    s3 = aws.client(settings, "s3")
    service = stack(settings, services=("ingest-validator",))
    metadata = [
        _put(s3, settings, f"{settings.songs_prefix}songs.csv", SONGS),
        _put(s3, settings, f"{settings.users_prefix}users.csv", USERS),
    ]
    wait_for(lambda: _reports(s3, settings, metadata), timeout=60, what="metadata validated")
    # WHEN every hostile file is uploaded, each followed at once by a good file, then files under odd keys
    bad, good = [], []
    for i, name in enumerate(sorted(CASES)):
        bad.append((_put(s3, settings, f"{settings.s3_raw_data_prefix}hostile/{name}", CASES[name][0]()), name))
        good.append(_put(s3, settings, f"{settings.s3_raw_data_prefix}good/after-{i}.csv", _good(i)))
    for j, key in enumerate(ODD_KEYS):
        good.append(_put(s3, settings, f"{settings.s3_raw_data_prefix}{key}", _good(100 + j)))
    # THEN every file gets its outcome: each bad one the expected one, each good one accepted whole
    refs = [ref for ref, _ in bad] + good
    reports = wait_for(lambda: _reports(s3, settings, refs), timeout=240, what="every file judged")
    for (_, name), report in zip(bad, reports, strict=False):
        _check(report, CASES[name][1])
    for report in reports[len(bad) :]:
        assert (report["status"], report["rows_accepted"], report["rows_quarantined"]) == ("accepted", 2, 0)
    # AND the service never crashed or restarted, and nothing was left in the queue or its DLQ
    assert service.restarts == {} and service.procs["ingest-validator"].poll() is None
    sqs = aws.client(settings, "sqs")
    spec = resources(settings).queue(S3_EVENTS)
    for name in (spec.name, spec.dlq_name):
        attrs = sqs.get_queue_attributes(
            QueueUrl=aws.queue_url(sqs, name),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        assert sum(int(v) for v in attrs.values()) == 0, (name, attrs)


def _good(i: int) -> bytes:
    return HEADER + f"u1,t1,2024-02-01 10:00:{i % 60:02d}\nu2,t2,2024-02-0{1 + i // 60} 11:00:00\n".encode()


def _reports(s3: Any, settings: Settings, refs: list[S3ObjectRef]) -> list[dict[str, Any]] | None:
    prefix = f"{settings.s3_processing_metadata_prefix}files/"
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=settings.s3_bucket, Prefix=prefix)
    present = {o["Key"] for page in pages for o in page.get("Contents", [])}
    keys = [lake.report_key(settings, lake.file_id(r.key, r.etag)) for r in refs]
    if not present >= set(keys):
        return None
    return [json.loads(s3.get_object(Bucket=settings.s3_bucket, Key=k)["Body"].read()) for k in keys]
