"""Stream files through the emulator's S3: row reasons, formats, the lake, the report, the archive."""

from __future__ import annotations

import datetime as dt
import gzip

import pytest

from playcount.core import aws, lake
from playcount.core.messages import FileValidated
from playcount.core.resources import VALIDATED, resources

UTC = dt.UTC


def test_each_row_reason_is_quarantined_with_its_original_values(known, bucket, settings):
    # GIVEN one row per reason, after two good rows (line numbers count data records from 1)
    body = (
        "user_id,track_id,listen_time\n"
        "u1,t1,2024-03-01 10:00:00\n"
        "u2,t2,2024-03-01 11:00:00\n"
        ",t1,2024-03-01 10:00:00\n"
        "u1,  ,2024-03-01 10:00:00\n"
        "u1,t1,\n"
        f"{'u' * 129},t1,2024-03-01 10:00:00\n"
        f"u1,{'t' * 129},2024-03-01 10:00:00\n"
        "u1,t1,yesterday\n"
        "u1,t1,2024-02-30 10:00:00\n"
        "u1,t1,1999-12-31 23:59:59\n"
        "u1,t1,2999-01-01 00:00:00\n"
        "u1,t9,2024-03-01 10:00:00\n"
        "u9,t1,2024-03-01 10:00:00\n"
        "u1,t1,2024-03-01T10:00:00Z\n"
        "u1,t1\n"
    )
    # WHEN it is judged
    report = known(body)
    # THEN every bad row is in rows.csv with its line, original values and reason
    expected = {
        3: "missing_user_id",
        4: "missing_track_id",
        5: "missing_listen_time",
        6: "bad_user_id",
        7: "bad_track_id",
        8: "bad_listen_time",
        9: "bad_listen_time",
        10: "listen_time_out_of_range",
        11: "listen_time_out_of_range",
        12: "unknown_track_id",
        13: "unknown_user_id",
        14: "duplicate_event",
    }
    rows = bucket.rows(report.rejected_rows_key)
    by_line = {int(r["line"]): r for r in rows if r["line"]}
    assert {line: r["reason"] for line, r in by_line.items()} == expected
    assert by_line[4]["track_id"] == "  " and by_line[8]["listen_time"] == "yesterday"
    assert by_line[14]["listen_time"] == "2024-03-01T10:00:00.000000Z"  # the event as judged, repeated
    malformed = [r for r in rows if not r["line"]]
    assert [(r["reason"], r["raw"]) for r in malformed] == [("malformed_row", "u1,t1")]
    # AND the report adds up: every row read is accepted or quarantined, never dropped
    assert report.status == "accepted"
    assert report.rows_read == 15 and report.rows_accepted == 2 and report.rows_quarantined == 13
    assert report.quarantined_by_reason == {
        "missing_user_id": 1,
        "missing_track_id": 1,
        "missing_listen_time": 1,
        "bad_user_id": 1,
        "bad_track_id": 1,
        "bad_listen_time": 2,
        "listen_time_out_of_range": 2,
        "unknown_track_id": 1,
        "unknown_user_id": 1,
        "duplicate_event": 1,
        "malformed_row": 1,
    }
    assert report.duplicates == 1 and report.dates == [dt.date(2024, 3, 1)]
    assert bucket.events().num_rows == 2


def test_unknown_ids_are_judged_against_no_metadata_at_all(validator, bucket):
    # GIVEN no songs or users validated yet
    ref = bucket.stream("early.csv", "user_id,track_id,listen_time\nu1,t1,2024-03-01 10:00:00\n")
    # WHEN a stream file arrives, THEN its rows wait in quarantine (replayable), nothing is dropped
    report = validator.handle(ref)
    assert report.quarantined_by_reason == {"unknown_track_id": 1}
    assert report.rows_accepted == 0 and report.dates == []


def test_bom_crlf_and_header_matched_trimmed_case_insensitively_in_any_order(known, bucket):
    body = (
        "\ufeff Listen_Time ,EXTRA, USER_ID ,Track_ID\r\n2024-03-02 10:00:00,x,u1,t1\r\n2024-03-02 11:00:00,y,u2,t2\r\n"
    )
    report = known(body.encode("utf-8"))
    assert (report.rows_read, report.rows_accepted, report.rows_quarantined) == (2, 2, 0)
    events = bucket.events().sort_by("listen_time")
    assert events["user_id"].to_pylist() == ["u1", "u2"] and events["track_id"].to_pylist() == ["t1", "t2"]


def test_last_line_without_newline_and_blank_lines(known, bucket):
    report = known("user_id,track_id,listen_time\n\nu1,t1,2024-03-02 10:00:00\n\nu2,t2,2024-03-02 11:00:00")
    assert (report.rows_read, report.rows_accepted) == (2, 2)


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        # every accepted form is parsed as a pure function in test_rules.py; here, through a file,
        # that the lake stores UTC and partitions by the UTC date (a date boundary crossed both ways)
        ("2024-03-03T10:00:00.123456Z", dt.datetime(2024, 3, 3, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2024-03-02T23:30:00-05:00", dt.datetime(2024, 3, 3, 4, 30, tzinfo=UTC)),
        ("2024-03-04T01:00:00+02:00", dt.datetime(2024, 3, 3, 23, tzinfo=UTC)),
    ],
)
def test_timestamps_are_stored_as_utc_and_partitioned_by_utc_date(known, bucket, settings, text, utc):
    report = known(f"user_id,track_id,listen_time\nu1,t1,{text}\n")
    assert report.rows_accepted == 1 and report.dates == [utc.date()]
    events = bucket.events()
    assert events["listen_time"].to_pylist() == [utc]
    fid = report.file_id
    assert bucket.keys(lake.streams_root(settings)) == [lake.events_key(settings, utc.date(), fid)]


@pytest.mark.parametrize(
    "text",
    # every refused form is parsed as a pure function in test_rules.py; here, through a file, that
    # a malformed and an impossible one are quarantined with their reason
    ["03/03/2024 10:00:00", "2024-04-31 10:00:00"],
)
def test_malformed_or_impossible_timestamps_are_bad_listen_time(known, text):
    report = known(f"user_id,track_id,listen_time\nu1,t1,{text}\n")
    assert report.quarantined_by_reason == {"bad_listen_time": 1}


def test_listen_date_crossing_midnight_goes_to_each_utc_date(known, bucket, settings):
    body = "user_id,track_id,listen_time\nu1,t1,2024-03-03T23:59:59Z\nu1,t1,2024-03-04T01:00:00+02:00\n"
    report = known(body)
    assert report.dates == [dt.date(2024, 3, 3)]  # 01:00+02:00 is 23:00 UTC the day before
    report = known("user_id,track_id,listen_time\nu2,t2,2024-03-03 23:00:00\nu2,t2,2024-03-04 00:00:00\n", "b.csv")
    assert report.dates == [dt.date(2024, 3, 3), dt.date(2024, 3, 4)]


def test_gzip_stream_file_is_read(known, bucket):
    body = gzip.compress(b"user_id,track_id,listen_time\nu1,t1,2024-03-05 10:00:00\nu2,t2,2024-03-05 10:00:00\n")
    report = known(body, "day.csv.gz")
    assert report.status == "accepted" and report.rows_accepted == 2


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"user_id,track_id,listen_time\nu1,t1,2024-03-05 10:00:00\n", "not_gzip"),
        (
            gzip.compress(b"user_id,track_id,listen_time\n" + b"u1,t1,2024-03-05 10:00:00\n" * 5000)[:-200],
            "corrupt_gzip",
        ),
        (b"", "not_gzip"),
    ],
    ids=["plain-text", "truncated", "empty"],
)
def test_gz_key_that_is_not_valid_gzip_rejects_the_file(known, bucket, body, reason):
    report = known(body, "day.csv.gz")
    assert report.status == "rejected" and report.reason == reason
    assert bucket.events().num_rows == 0


def test_within_file_duplicates_count_once_and_are_quarantined(known, bucket):
    # the same event written three ways, and a near-duplicate (another second) that is kept
    body = (
        "user_id,track_id,listen_time\n"
        "u1,t1,2024-03-06 10:00:00\n"
        "u1,t1,2024-03-06T10:00:00Z\n"
        " u1 , t1 ,2024-03-06T12:00:00+02:00\n"
        "u1,t1,2024-03-06 10:00:01\n"
    )
    report = known(body)
    assert report.rows_accepted == 2 and report.duplicates == 2
    assert [r["line"] for r in bucket.rows(report.rejected_rows_key)] == ["2", "3"]  # the first one is kept
    assert bucket.events().num_rows == 2


def test_duplicates_across_files_are_kept_per_file_for_the_runner_to_count_once(known, bucket, settings):
    # GIVEN two files sharing one event
    a = known("user_id,track_id,listen_time\nu1,t1,2024-03-07 10:00:00\nu2,t2,2024-03-07 10:00:00\n", "a.csv")
    b = known("user_id,track_id,listen_time\nu1,t1,2024-03-07T10:00:00Z\nu3,t3,2024-03-07 10:00:00\n", "b.csv")
    # THEN each file's report counts only its own duplicates (none), and the lake keeps one
    # Parquet per file and date, so the union the runner reads, de-duplicated, holds 3 events
    assert a.duplicates == b.duplicates == 0 and b.rows_accepted == 2
    day = dt.date(2024, 3, 7)
    assert bucket.keys(lake.date_partition(settings, day)) == sorted(
        [lake.events_key(settings, day, a.file_id), lake.events_key(settings, day, b.file_id)]
    )
    events = bucket.events()
    distinct = events.group_by(["user_id", "track_id", "listen_time"]).aggregate([])
    assert events.num_rows == 4 and distinct.num_rows == 3


def test_accepted_file_is_archived_then_announced_to_the_runner(known, bucket, settings):
    report = known("user_id,track_id,listen_time\nu1,t1,2024-03-08 10:00:00\nu1,t2,2024-03-09 10:00:00\n")
    key = f"{settings.s3_raw_data_prefix}file.csv"
    assert not bucket.exists(key) and bucket.exists(lake.archive_key(settings, key))
    stored = bucket.json(lake.report_key(settings, report.file_id))
    assert stored["rows_accepted"] == 2 and stored["dates"] == ["2024-03-08", "2024-03-09"]
    assert {"read_judge_s", "write_s", "total_s"} <= set(stored["timings"])
    sqs = aws.client(settings, "sqs")
    url = aws.queue_url(sqs, resources(settings).queue(VALIDATED).name)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    sent = [FileValidated.model_validate_json(m["Body"]) for m in messages]
    assert [(m.kind, m.file_id, m.dates) for m in sent] == [("streams", report.file_id, report.dates)]


def test_file_with_no_accepted_rows_is_archived_and_not_announced(known, bucket, settings):
    report = known("user_id,track_id,listen_time\nu9,t9,2024-03-08 10:00:00\n")
    assert report.status == "accepted" and report.dates == []
    sqs = aws.client(settings, "sqs")
    url = aws.queue_url(sqs, resources(settings).queue(VALIDATED).name)
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
    assert bucket.exists(lake.archive_key(settings, f"{settings.s3_raw_data_prefix}file.csv"))
