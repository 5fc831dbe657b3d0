"""At-least-once delivery: the same object judged twice, or after a crash, leaves one outcome."""

from __future__ import annotations

from playcount.core import lake
from playcount.ops.pipeline import counters

BODY = (
    "user_id,track_id,listen_time\n"
    "u1,t1,2024-05-01 10:00:00\n"
    "u2,t2,2024-05-02 10:00:00\n"
    "u2,t2,2024-05-02 10:00:00\n"
    "u9,t1,2024-05-01 10:00:00\n"
)


def _state(bucket, settings):
    prefixes = (settings.s3_validated_prefix, settings.s3_rejected_prefix, settings.s3_archive_prefix)
    return {k: v for p in prefixes for k, v in bucket.snapshot(p).items()}


def test_the_same_event_twice_changes_nothing(known, validator, bucket, settings):
    # GIVEN a file judged once
    ref = bucket.stream("twice.csv", BODY)
    first = validator.handle(ref)
    before, counted = _state(bucket, settings), counters(settings)
    # WHEN its event is delivered again
    again = validator.handle(ref)
    # THEN the stored report is returned, and lake, quarantine, archive and counters are unchanged
    assert again.model_dump() == first.model_dump()
    assert _state(bucket, settings) == before
    assert counters(settings) == counted
    assert counted["files_validated"] == 3 and counted["rows_accepted"] == 6 + 2  # metadata rows count too


def test_a_crash_before_the_report_is_redone_to_the_same_bytes(known, validator, bucket, settings, crash_before_report):
    # GIVEN a validator killed after writing the lake and the quarantine, before the report
    ref = bucket.stream("crash.csv", BODY)
    crash_before_report(ref)
    half_done = _state(bucket, settings)
    assert any(k.endswith(".parquet") for k in half_done) and bucket.exists(ref.key)  # not archived yet
    # WHEN the event is redelivered
    report = validator.handle(ref)
    # THEN the lake and the quarantine are the same objects with the same bytes, plus the archive
    after = _state(bucket, settings)
    archived = lake.archive_key(settings, ref.key)
    assert {k: v for k, v in after.items() if k != archived} == half_done
    assert after[archived] == BODY.encode()
    assert report.rows_accepted == 2 and report.duplicates == 1
    assert counters(settings)["files_validated"] == 3


def test_a_newer_upload_under_the_same_key_is_never_archived_by_the_old_event(known, validator, bucket, settings):
    # GIVEN version 1 judged and archived, then version 2 uploaded under the same key
    v1 = bucket.stream("same.csv", BODY)
    validator.handle(v1)
    v2 = bucket.stream("same.csv", "user_id,track_id,listen_time\nu3,t3,2024-05-03 10:00:00\n")
    # WHEN version 1's event is redelivered, THEN version 2 stays where it is
    validator.handle(v1)
    assert bucket.read(v2.key) == b"user_id,track_id,listen_time\nu3,t3,2024-05-03 10:00:00\n"
    # AND version 2 is judged on its own event, as its own file
    report = validator.handle(v2)
    assert report.file_id != lake.file_id(v1.key, v1.etag) and report.rows_accepted == 1
    assert not bucket.exists(v2.key)


def test_an_event_for_a_version_already_replaced_is_skipped(known, validator, bucket):
    v1 = bucket.stream("late.csv", BODY)
    bucket.stream("late.csv", "user_id,track_id,listen_time\nu3,t3,2024-05-03 10:00:00\n")
    assert validator.handle(v1) is None  # only the version the event names is ever judged


def test_a_rejected_file_redelivered_is_counted_once(validator, bucket, settings):
    ref = bucket.stream("bad.csv", "user_id,track_id\nu1,t1\n")
    first = validator.handle(ref)
    second = validator.handle(ref)
    assert first.status == second.status == "rejected"
    assert counters(settings)["files_rejected"] == 1
    assert bucket.read(first.rejected_file_key) == b"user_id,track_id\nu1,t1\n"
