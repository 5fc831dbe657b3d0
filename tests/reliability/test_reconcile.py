"""A lost S3 notification does not lose a file: the reconciliation sweep sends it through.

The loss is real: the file's event is taken off the s3-events queue and deleted before any
validator sees it (what a purge, or a notification deleted for a while, amounts to).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time

from playcount.core import aws, keys, lake, reconcile
from playcount.core.messages import parse_s3_event
from playcount.core.resources import S3_EVENTS, resources
from playcount.devstack import emulator as emu
from playcount.ops.pipeline import counters
from tests.support import world as support
from tests.support.helpers import wait_for

SONGS = b"track_id,track_name,artists,track_genre,popularity,duration_ms\nt1,Song,Ana,pop,50,181000\n"


def _lose_notifications(settings) -> int:
    """Take every message off the s3-events queue and delete it; how many there were."""
    sqs = aws.client(settings, "sqs")
    url = aws.queue_url(sqs, resources(settings).queue(S3_EVENTS).name)
    lost = 0
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if not got:
            return lost
        for m in got:
            lost += any(parse_s3_event(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def _upload_and_lose(settings) -> tuple[str, str]:
    key = f"{settings.songs_prefix}lost.csv"
    etag = aws.client(settings, "s3").put_object(Bucket=settings.s3_bucket, Key=key, Body=SONGS)["ETag"]
    assert wait_for(lambda: _lose_notifications(settings), timeout=30, what="the upload's notification to be lost")
    return key, etag.strip('"')


def _sweeps(log_dir) -> list[dict]:
    return [e for e in support.log_events(log_dir, "ingest-validator") if e.get("event") == "reconcile.swept"]


def test_a_file_whose_notification_was_lost_is_counted_after_the_validators_sweep(settings, stack, tmp_path):
    # GIVEN a metadata upload whose notification was lost before any validator ran
    key, etag = _upload_and_lose(settings)

    # WHEN a validator runs, sweeping every second for files older than no time at all
    stack(settings, services=("ingest-validator",), RECONCILE_SECONDS="1", RECONCILE_GRACE_SECONDS="0")

    # THEN the file is judged, counted once and archived, as if it had been notified
    wait_for(lambda: counters(settings)["files_validated"] == 1, timeout=60, what="the lost file counted")
    s3 = aws.client(settings, "s3")
    assert s3.list_objects_v2(Bucket=settings.s3_bucket, Prefix=key).get("KeyCount", 0) == 0
    assert s3.head_object(Bucket=settings.s3_bucket, Key=lake.archive_key(settings, key))["ETag"].strip('"') == etag
    # AND the sweeps after it find the file known: nothing is sent or counted again
    done = len(_sweeps(tmp_path / "logs"))
    wait_for(lambda: len(_sweeps(tmp_path / "logs")) >= done + 2, timeout=30, what="two more sweeps")
    assert all(e["sent"] == 0 for e in _sweeps(tmp_path / "logs")[done:])
    assert counters(settings)["files_received"] == 1


def test_playcount_reconcile_sends_lost_files_as_s3_would(settings):
    # GIVEN a lost notification
    key, etag = _upload_and_lose(settings)
    env = {**settings.to_env(), **emu.EMBEDDED_CREDENTIALS}

    def run(*args: str) -> dict:
        out = subprocess.run(
            [sys.executable, "-m", "playcount.cli.main", "reconcile", *args],
            capture_output=True, text=True, timeout=120, env=env, check=True,
        )  # fmt: skip
        return json.loads(out.stdout)

    # WHEN the sweep runs with a grace period the file is within, THEN it waits
    assert run("--grace", "3600")["too_recent"] == 1
    # and files uploaded before --since are not even considered
    assert run("--grace", "0", "--since", "2999-01-01")["listed"] == 0
    # WHEN it runs past the grace period, THEN the file gets an event shaped as S3's
    assert run("--grace", "0")["sent"] == [key]
    sqs = aws.client(settings, "sqs")
    url = aws.queue_url(sqs, resources(settings).queue(S3_EVENTS).name)
    (message,) = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)["Messages"]
    (ref,) = parse_s3_event(message["Body"])
    assert (ref.bucket, ref.key, ref.etag) == (settings.s3_bucket, key, etag)
    assert ref.event_time is not None and dt.datetime.now(dt.UTC) - ref.event_time < dt.timedelta(minutes=5)


def test_one_validator_sweeps_at_a_time(settings):
    ddb, table = aws.client(settings, "dynamodb"), settings.dynamodb_table_name
    assert reconcile.take_lease(ddb, table, 1.0, "a") is True
    assert reconcile.take_lease(ddb, table, 1.0, "b") is False
    time.sleep(1.2)
    assert reconcile.take_lease(ddb, table, 1.0, "b") is True
    item = ddb.get_item(TableName=table, Key={"pk": {"S": keys.RECONCILE_PK}, "sk": {"S": keys.LEASE_SK}})["Item"]
    assert item["owner"]["S"] == "b"
