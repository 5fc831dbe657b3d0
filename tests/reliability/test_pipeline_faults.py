"""Redelivery, poison messages and graceful stops on one running stack (Spark starts once).

The module shares one stack and one data set; each test leaves the pipeline drained with
exact KPIs, and ends by checking that (served KPIs against the oracle, field by field; every
file accounted for; nothing counted twice).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from typing import Any

import pyarrow.parquet as pq
import pytest
from boto3.dynamodb.types import TypeDeserializer

from playcount.core import aws, keys, lake, parquet
from playcount.core.messages import FileValidated, KpiResultReady
from playcount.core.resources import RESULTS, S3_EVENTS, VALIDATED, resources
from playcount.devstack import emulator as emu
from playcount.devstack.sandbox import sandbox_settings
from playcount.devstack.stack import Stack
from playcount.ops import dlq
from playcount.ops.bootstrap import bootstrap
from playcount.ops.pipeline import queue_depths, wait_until_idle
from playcount.runner import versions
from tests.support import world as support
from tests.support.helpers import get_json, wait_for
from tests.support.sandbox import teardown
from tests.support.world import Running

pytestmark = [pytest.mark.e2e, pytest.mark.spark]

VISIBILITY_SECONDS = 20


@pytest.fixture(scope="module")
def running(emulator, tmp_path_factory):
    work = tmp_path_factory.mktemp("pipeline-faults")
    settings = sandbox_settings(emulator, work / "work", sqs_visibility_timeout=VISIBILITY_SECONDS)
    bootstrap(settings)
    stack = Stack(
        env={**settings.to_env(), **emu.EMBEDDED_CREDENTIALS, "LOG_FORMAT": "json"},
        log_dir=work / "logs",
    )
    stack.start()
    try:
        r = Running(settings, stack, work / "logs")
        r.world = support.world(settings)
        # GIVEN files that were processed in separate recomputations (so each date has an
        # older result version than the one served), and one file rejected as a whole
        r.w.upload_stream("first", rows=300, seed=101)
        r.settled_exactly()
        r.w.upload_stream("second", rows=300, seed=102)
        r.w.upload_stream("third", rows=300, seed=103)
        r.w.upload_rejected("empty")
        r.settled_exactly()
        yield r
    finally:
        stack.stop()
        teardown(settings)


# -- redelivery --------------------------------------------------------------------------------
def _s3_event(settings, upload: support.Upload) -> str:
    """The notification S3 (moto) sends for `upload`, built by hand: key URL-encoded, eTag quoted."""
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": settings.aws_region,
        "eventTime": dt.datetime.now(dt.UTC).isoformat(),
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": settings.s3_bucket, "arn": f"arn:aws:s3:::{settings.s3_bucket}"},
            "object": {
                "key": urllib.parse.quote_plus(upload.key),
                "size": len(upload.body),
                "eTag": f'"{upload.etag}"',
            },
        },
    }
    return json.dumps({"Records": [record]})


def _file_validated(settings, upload: support.Upload) -> str:
    report = json.loads(
        aws.client(settings, "s3")
        .get_object(Bucket=settings.s3_bucket, Key=lake.report_key(settings, upload.file_id))["Body"]
        .read()
    )
    return FileValidated(
        kind="streams",
        file_id=upload.file_id,
        source_key=upload.key,
        dates=report["dates"],
        report_key=lake.report_key(settings, upload.file_id),
        uploaded_at=report.get("uploaded_at"),
        validated_at=report["validated_at"],
    ).model_dump_json()


def _results(settings, day: dt.date) -> list[KpiResultReady]:
    """Every result the runner stored for `day`, oldest version first."""
    s3 = aws.client(settings, "s3")
    prefix = f"{settings.s3_transformed_prefix}date={day.isoformat()}/"
    out = []
    for o in s3.list_objects_v2(Bucket=settings.s3_bucket, Prefix=prefix).get("Contents", []):
        body = json.loads(s3.get_object(Bucket=settings.s3_bucket, Key=o["Key"])["Body"].read())
        out.append(
            KpiResultReady(date=day, version=body["version"], result_key=o["Key"], computed_at=body["computed_at"])
        )
    return sorted(out, key=lambda r: r.version)


_de = TypeDeserializer()


def _kpi_items(settings) -> dict[tuple[str, str], dict[str, Any]]:
    """The KPI items of the table, without their version stamps (which a recompute moves)."""
    items = support._scan(aws.client(settings, "dynamodb"), settings.dynamodb_table_name)
    out = {}
    for raw in items:
        item = {k: _de.deserialize(v) for k, v in raw.items()}
        if str(item["pk"]).startswith(("GENRE#", "DATE#")) and item["sk"] not in (keys.HEAD_SK, keys.LOCK_SK):
            out[(item["pk"], item["sk"])] = {k: v for k, v in item.items() if k not in ("version", "computed_at")}
    return out


def _heads(settings) -> dict[str, int]:
    ddb = aws.client(settings, "dynamodb")
    return {
        d.isoformat(): int(
            ddb.get_item(
                TableName=settings.dynamodb_table_name,
                Key={"pk": {"S": keys.day_pk(d)}, "sk": {"S": keys.HEAD_SK}},
                ConsistentRead=True,
            )["Item"]["version"]["N"]
        )
        for d in support.DAYS
    }


def test_redelivered_and_reordered_messages_change_nothing(running: Running):
    s = running.settings
    items_before, heads_before = _kpi_items(s), _heads(s)
    first, second, _, empty = running.w.uploads
    results = {d: _results(s, d) for d in support.DAYS}
    assert all(len(r) >= 2 for r in results.values()), "each date needs an older and a newer result"

    # WHEN every kind of message is delivered again, twice, and results arrive newest first
    for _ in range(2):
        running.send(S3_EVENTS, _s3_event(s, second))
        running.send(S3_EVENTS, _s3_event(s, first))
    running.send(S3_EVENTS, _s3_event(s, empty))
    for _ in range(2):
        running.send(VALIDATED, _file_validated(s, second))
    for day in support.DAYS:
        newest, oldest = results[day][-1], results[day][0]
        for r in (newest, oldest, newest, oldest):
            running.send(RESULTS, r.model_dump_json())

    # THEN the same KPIs are served, every file is counted once, and no date went back in time
    running.settled_exactly()
    heads_after = _heads(s)
    assert all(heads_after[d] >= heads_before[d] for d in heads_before), (heads_before, heads_after)
    assert _kpi_items(s) == items_before
    # the writer recognises each older result: superseded by the newer one stored (it applies
    # that, a replay), or, with WRITER_APPLY_NEWEST off, refused as stale
    recognised = [
        e
        for e in support.log_events(running.log_dir, "dynamo-writer")
        if e.get("event") in ("result.superseded", "message.stale")
    ]
    assert len(recognised) >= 4, "the older results must have been recognised as superseded or stale"


# -- poison messages -------------------------------------------------------------------------------
def _metric_values(api: str, name: str) -> dict[str, float]:
    import urllib.request

    with urllib.request.urlopen(f"{api}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(rf"^{name}\{{(.*)\}} ([0-9.e+-]+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def _dlq_depths_served(api: str) -> dict[str, int]:
    status, body = get_json(f"{api}/pipeline/status")
    assert status == 200, body
    return {q["dlq"]: q["dlq_depth"] for q in body["queues"]}


def _cli(settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.to_env(), **emu.EMBEDDED_CREDENTIALS}
    return subprocess.run(
        [sys.executable, "-m", "playcount.cli.main", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_poison_messages_land_in_dlqs_are_visible_and_redrive_after_a_fix(running: Running):
    s = running.settings
    specs = {q.stage: q for q in resources(s).queues}
    day = support.DAYS[0]
    newest = _results(s, day)[-1]
    version = _take_version(s)  # from the runners' counter: a version no computation will reuse
    missing_key = lake.result_key(s, day, version)
    never_there = newest.model_copy(update={"version": version, "result_key": missing_key})

    # WHEN each queue gets a message that can never succeed as it is
    running.send(S3_EVENTS, "this is not JSON {")
    running.send(VALIDATED, json.dumps({"kind": "streams", "file_id": "x"}))
    running.send(RESULTS, never_there.model_dump_json())  # names a result object that does not exist

    # THEN after the redrive count, each sits in its queue's DLQ, shown by /pipeline/status and /metrics
    want = {specs[S3_EVENTS].dlq_name: 1, specs[VALIDATED].dlq_name: 1, specs[RESULTS].dlq_name: 1}
    wait_for(lambda: _dlq_depths_served(running.api) == want, timeout=120, what="poison in every DLQ")
    for q in queue_depths(s):
        assert q.empty, f"{q.name} must not be blocked behind its poison message"

    def metrics_show_it() -> bool:
        gauges = _metric_values(running.api, "playcount_dlq_messages")
        return all(any(dlq_name in labels and v == 1 for labels, v in gauges.items()) for dlq_name in want)

    wait_for(metrics_show_it, timeout=30, what="DLQ depths in /metrics")
    letters = dlq.peek(s, RESULTS)
    assert [json.loads(m.body)["result_key"] for m in letters] == [missing_key]
    assert letters[0].receive_count >= s.sqs_max_receive_count

    # WHEN the cause is fixed (the result object now exists) and the DLQ is redriven by the CLI
    s3 = aws.client(s, "s3")
    current = json.loads(s3.get_object(Bucket=s.s3_bucket, Key=newest.result_key)["Body"].read())
    s3.put_object(Bucket=s.s3_bucket, Key=missing_key, Body=json.dumps(current | {"version": never_there.version}))
    done = _cli(s, "dlq", "redrive", RESULTS)
    assert done.returncode == 0 and "moved 1 message" in done.stdout, done.stderr

    # THEN the writer applies it: the date moves to the fixed version, with the same KPIs
    wait_for(lambda: _heads(s)[day.isoformat()] == never_there.version, timeout=60, what="redriven result applied")
    assert dlq.depth(s, RESULTS) == 0

    # and an unfixable body redriven goes back to the DLQ, never blocking its queue
    assert _cli(s, "dlq", "redrive", S3_EVENTS).returncode == 0
    wait_for(lambda: dlq.depth(s, S3_EVENTS) == 1, timeout=60, what="garbage back in the DLQ")
    for stage in (S3_EVENTS, VALIDATED):  # clean up what can never be fixed
        _purge(s, specs[stage].dlq_name)
    running.settled_exactly()


def _purge(settings, name: str) -> None:
    sqs = aws.client(settings, "sqs")
    url = aws.queue_url(sqs, name)
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages"):
        for m in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


# -- graceful stop ----------------------------------------------------------------------------------
def _in_flight(settings, stage: str) -> bool:
    return any(q.in_flight for q in queue_depths(settings) if q.name == resources(settings).queue(stage).name)


def _no_half_written_state(settings) -> list[str]:
    """Every lake Parquet object is whole (manifests are JSON); every date's KPI items are at its HEAD version."""
    problems = []
    fs = parquet.filesystem(settings)
    objects = support._list(aws.client(settings, "s3"), settings.s3_bucket, settings.s3_validated_prefix)
    for key in (k for k in objects if k.endswith(".parquet")):
        try:
            pq.read_metadata(lake.path(settings, key), filesystem=fs)
        except Exception as exc:
            problems.append(f"{key}: unreadable ({exc!r})")
    items = support._scan(aws.client(settings, "dynamodb"), settings.dynamodb_table_name)
    heads = _heads(settings)
    for raw in items:
        pk, sk = raw["pk"]["S"], raw["sk"]["S"]
        day = next((d for d in heads if pk.endswith(f"DATE#{d}")), None)
        if day and sk not in (keys.HEAD_SK, keys.LOCK_SK) and int(raw["version"]["N"]) != heads[day]:
            problems.append(f"{pk} {sk}: version {raw['version']['N']}, HEAD of {day} is {heads[day]}")
    return problems


def _take_version(settings) -> int:
    """A version as a runner takes one: from the shared counter, so no later computation reuses it
    (a version made up as `newest + 1` would be the next runner's, and its result a mere replay)."""
    return versions.take(aws.client(settings, "dynamodb"), settings.dynamodb_table_name)


def _send_newer_versions(running: Running, result: KpiResultReady, count: int) -> None:
    """Store `count` newer versions of the same KPIs and announce them: real applies, same figures."""
    s = running.settings
    s3 = aws.client(s, "s3")
    body = json.loads(s3.get_object(Bucket=s.s3_bucket, Key=result.result_key)["Body"].read())
    for _ in range(count):
        version = _take_version(s)
        key = lake.result_key(s, result.date, version)
        s3.put_object(Bucket=s.s3_bucket, Key=key, Body=json.dumps(body | {"version": version}))
        newer = result.model_copy(update={"version": version, "result_key": key})
        running.send(RESULTS, newer.model_dump_json())


WORKER_STAGES = {"ingest-validator": S3_EVENTS, "kpi-spark-runner": VALIDATED, "dynamo-writer": RESULTS}
# the runner's batch gets 120 s to finish; the others 30 s (playcount.core.worker); plus start-up slack
STOP_BOUNDS = {"ingest-validator": 40.0, "kpi-spark-runner": 140.0, "dynamo-writer": 40.0, "query-api": 15.0}


@pytest.mark.parametrize("service", list(WORKER_STAGES))
def test_sigterm_finishes_or_returns_in_flight_work_and_exits_0(running: Running, service: str):
    s = running.settings
    stage = WORKER_STAGES[service]
    seed = 200 + list(WORKER_STAGES).index(service)
    # GIVEN work arriving for the service (a larger file, so that validation takes a moment;
    # for the quick writer, a dozen newer versions of the current results to apply)
    running.w.upload_stream(f"graceful-{service}", rows=20_000 if service == "ingest-validator" else 300, seed=seed)
    if service == "dynamo-writer":
        assert wait_until_idle(s, timeout=240)
        for day in support.DAYS:
            _send_newer_versions(running, _results(s, day)[-1], count=6)

    # WHEN it gets SIGTERM, as soon as it holds a message (or right after, if it was too quick)
    caught = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not caught:
        caught = _in_flight(s, stage)
        if not caught:
            time.sleep(0.02)
    t0 = time.monotonic()
    proc = running.stack.procs[service]
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=STOP_BOUNDS[service] + 30)
    took = time.monotonic() - t0

    # THEN it exits 0 within the bound, leaving nothing half-written and the message not stuck
    assert code == 0, f"{service} exited {code}"
    assert took < STOP_BOUNDS[service], f"{service} took {took:.1f} s to stop"
    assert not _no_half_written_state(s), _no_half_written_state(s)
    assert not _in_flight(s, stage), "a stopped service must not leave its message hidden"
    events = [e["event"] for e in support.log_events(running.log_dir, service)]
    assert "consumer.stop" in events
    print(f"{service}: in flight when stopped: {caught}; stopped in {took:.1f} s")

    running.stack.start_service(service)
    running.settled_exactly()


def test_sigterm_to_the_api_drains_requests_and_exits_0(running: Running):
    # GIVEN clients hammering the API
    statuses: list[int] = []
    stop = threading.Event()
    day = support.DAYS[0].isoformat()

    def client() -> None:
        while not stop.is_set():
            statuses.append(get_json(f"{running.api}/days/{day}/top-genres", timeout=5)[0])

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    wait_for(lambda: len(statuses) > 20, timeout=30, what="requests flowing")

    # WHEN the API gets SIGTERM
    proc = running.stack.procs["query-api"]
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=STOP_BOUNDS["query-api"] + 30)
    took = time.monotonic() - t0
    stop.set()
    for t in threads:
        t.join()

    # THEN it exits 0 promptly; every answer it gave was complete (200) or a refused connection (0)
    assert code == 0 and took < STOP_BOUNDS["query-api"], (code, took)
    assert set(statuses) <= {200, 0}, sorted(set(statuses))
    running.stack.start_service("query-api")
    wait_for(lambda: get_json(f"{running.api}/health")[0] == 200, timeout=60, what="API back")
    running.settled_exactly()
