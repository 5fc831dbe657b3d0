"""A file refused whole: moved under rejected/ with a JSON report; nothing from it counts."""

from __future__ import annotations

import pytest

from playcount.core import aws, lake
from playcount.core.resources import VALIDATED, resources
from playcount.ops.pipeline import counters


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"user_id,track_id\nu1,t1\n", "missing_columns"),
        (b"", "empty_file"),
        (b"\x00\x01\x02binary\n", "not_text"),
        (b"user_id,track_\xff\xfeid,listen_time\n", "not_utf8"),
        (b"user_id,track_id,listen_time\nu1,t\xff1,2024-05-01 10:00:00\n", "not_utf8"),
        (b'"user_id,track_id,listen_time\n', "not_csv"),
    ],
    ids=["missing-column", "empty", "binary", "header-not-utf8", "row-not-utf8", "header-not-csv"],
)
def test_file_is_moved_to_rejected_with_a_report(known, bucket, settings, body, reason):
    before = counters(settings)
    # WHEN a file that cannot be read as our CSV arrives
    report = known(body, "refused.csv")
    # THEN its original is under rejected/{file_id}/original/, with a JSON report saying why
    assert report.status == "rejected" and report.reason == reason and report.detail
    prefix = lake.rejected_prefix(settings, report.file_id)
    assert report.rejected_file_key == f"{prefix}original/refused.csv"
    assert bucket.read(report.rejected_file_key) == body
    assert bucket.json(f"{prefix}report.json")["reason"] == reason
    assert bucket.json(lake.report_key(settings, report.file_id))["status"] == "rejected"
    # AND it is gone from streams/, nothing reached the lake, the runner was not told
    assert not bucket.exists(f"{settings.s3_raw_data_prefix}refused.csv")
    assert not bucket.keys(lake.streams_root(settings))
    assert not bucket.keys(settings.s3_archive_prefix + settings.s3_raw_data_prefix)
    sqs = aws.client(settings, "sqs")
    url = aws.queue_url(sqs, resources(settings).queue(VALIDATED).name)
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
    after = counters(settings)
    assert after["files_rejected"] == before["files_rejected"] + 1
    assert after["rows_accepted"] == before["rows_accepted"]
