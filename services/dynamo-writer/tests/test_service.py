"""The writer as a service: competing processes on one queue, the DLQ, and the ledger."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from contextlib import asynccontextmanager

import pytest

from playcount.core import aws, lake, ledger
from playcount.core.errors import PoisonMessage, StaleResult
from playcount.core.messages import KpiResultReady, SourceFile
from playcount.core.resources import RESULTS, resources
from playcount.core.worker import consume
from playcount.ops import dlq
from playcount.ops.pipeline import queue_depths
from playcount.writer.config import WriterOptions
from playcount.writer.handler import Writer
from playcount.writer.main import SERVICE, batch_handler
from tests.support.helpers import wait_for
from tests.support.world import log_events, wait_consuming
from tests.support.writer import (
    DAY,
    Throttle,
    assert_holds_exactly,
    client_without_retries,
    kpi_items_of,
    make_day,
    scan,
    versions,
)


def _results_url(settings, sqs):
    return aws.queue_url(sqs, resources(settings).queue(RESULTS).name)


def _message(settings, kpis, uploaded_at=None) -> KpiResultReady:
    return KpiResultReady(
        date=kpis.date,
        version=kpis.version,
        result_key=lake.result_key(settings, kpis.date, kpis.version),
        computed_at=kpis.computed_at,
        files=[SourceFile(file_id=f"f{kpis.version}", uploaded_at=uploaded_at)],
    )


def _store(settings, s3, kpis) -> KpiResultReady:
    """What the runner does before announcing a result: the result object in S3."""
    message = _message(settings, kpis)
    s3.put_object(Bucket=settings.s3_bucket, Key=message.result_key, Body=kpis.model_dump_json().encode())
    return message


def _results_drained(settings) -> bool:
    """Nothing visible, in flight or delayed on the results queue (upstream queues are not ours:
    with no validator running, S3's test event stays on the s3-events queue)."""
    name = resources(settings).queue(RESULTS).name
    return next(q for q in queue_depths(settings) if q.name == name).empty


def _applied_by(log_dir) -> set[int]:
    """The writer processes that applied a result (not skipped it), from their logged events."""
    events = log_events(log_dir, "dynamo-writer")
    return {e["pid"] for e in events if e["event"] == "result.applied" and not e["skipped"]}


def test_competing_writer_processes_end_on_the_newest_version_of_every_date(settings, stack, tmp_path):
    # GIVEN three writer processes consuming the same results queue, each applying exactly the
    # version its message names (not the newest stored), so that versions really race
    for _ in range(3):
        stack(settings, services=("dynamo-writer",), WRITER_APPLY_NEWEST="false")
    log_dir = tmp_path / "logs"
    wait_consuming(log_dir, "dynamo-writer", starts=3, timeout=60)

    # WHEN five versions of three dates are announced, each twice, in a shuffled order
    s3, sqs = aws.client(settings, "s3"), aws.client(settings, "sqs")
    days = [DAY + dt.timedelta(days=i) for i in range(3)]
    results = {d: versions(d, 5, seed=20 + i) for i, d in enumerate(days)}
    messages = [_store(settings, s3, k) for rs in results.values() for k in rs] * 2
    random.Random(8).shuffle(messages)
    url = _results_url(settings, sqs)
    for m in messages:
        sqs.send_message(QueueUrl=url, MessageBody=m.model_dump_json())
    wait_for(lambda: _results_drained(settings), timeout=120, what="the results queue to drain")

    # THEN every date holds exactly its newest version, nothing was dead-lettered, no lease is
    # left, and the work was shared by several processes
    ddb = aws.client(settings, "dynamodb")
    for d in days:
        assert_holds_exactly(ddb, settings.dynamodb_table_name, results[d][-1])
        head = scan(ddb, settings.dynamodb_table_name)[(f"DATE#{d.isoformat()}", "HEAD")]
        assert head["version"] == results[d][-1].version and "lease_owner" not in head
    assert dlq.depth(settings, RESULTS) == 0
    assert len(_applied_by(log_dir)) >= 2


def test_results_that_can_never_apply_end_in_the_dlq(settings, stack):
    # GIVEN a writer process
    stack(settings, services=("dynamo-writer",))
    s3, sqs = aws.client(settings, "s3"), aws.client(settings, "sqs")
    url = _results_url(settings, sqs)

    # WHEN it gets a message whose result object is missing, one whose result has a genre
    # that cannot be part of a key, and a body that is not a message at all
    missing = _message(settings, make_day(DAY, 1, {"rock": (3, ["a"])}))
    bad = _store(settings, s3, make_day(DAY, 2, {"rock#DATE#2025-06-25": (3, ["a"])}))
    for body in (missing.model_dump_json(), bad.model_dump_json(), "{not json"):
        sqs.send_message(QueueUrl=url, MessageBody=body)

    # THEN after the redrive count, all three are in the DLQ and nothing was written
    wait_for(lambda: dlq.depth(settings, RESULTS) == 3, timeout=90, what="three dead letters")
    assert _results_drained(settings)
    assert kpi_items_of(aws.client(settings, "dynamodb"), settings.dynamodb_table_name, DAY) == {}


async def test_a_message_throttled_on_every_delivery_ends_in_the_dlq(sandbox):
    # GIVEN a results queue that dead-letters after 2 receives, and a writer whose every
    # DynamoDB write is throttled (injected by a botocore hook: the emulator never throttles)
    settings = sandbox(sqs_max_receive_count=2)
    throttle = Throttle(lambda n: True)
    options = WriterOptions(retry_rounds=1, backoff_base_seconds=0.01)

    @asynccontextmanager
    async def factory(settings, session):
        ddb = throttle.install(client_without_retries(settings))
        writer = Writer(settings=settings, s3=aws.client(settings, "s3"), ddb=ddb, options=options)
        try:
            yield batch_handler(writer)
        finally:
            writer.close()

    s3, sqs = aws.client(settings, "s3"), aws.client(settings, "sqs")
    message = _store(settings, s3, make_day(DAY, 1, {"rock": (3, ["a"])}))
    sqs.send_message(QueueUrl=_results_url(settings, sqs), MessageBody=message.model_dump_json())

    # WHEN the real consumer loop runs the writer
    stop = asyncio.Event()
    loop = asyncio.create_task(consume(settings, SERVICE, RESULTS, factory, stop=stop))
    try:
        for _ in range(300):
            if dlq.depth(settings, RESULTS) == 1:
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await loop

    # THEN each delivery failed after its retry round, and SQS dead-lettered the message
    assert dlq.depth(settings, RESULTS) == 1
    assert throttle.refused >= 2 * 2  # two deliveries, each the first try and one round
    assert _results_drained(settings)


def test_a_replayed_message_is_counted_once(settings):
    # GIVEN a result announced with the upload time of its file
    s3 = aws.client(settings, "s3")
    kpis = make_day(DAY, 4, {"rock": (3, ["a", "b"])})
    _store(settings, s3, kpis)
    message = _message(settings, kpis, uploaded_at=dt.datetime.now(dt.UTC))
    writer = Writer(settings=settings, s3=s3, ddb=aws.client(settings, "dynamodb"))

    # WHEN the message is handled twice
    try:
        first, second = writer.handle(message), writer.handle(message)
    finally:
        writer.close()

    # THEN the date was written once and counted once
    ddb = aws.client(settings, "dynamodb")
    assert not first.skipped and second.skipped
    assert ledger.read_counters(ddb, settings.dynamodb_table_name)["dates_written"] == 1
    assert_holds_exactly(ddb, settings.dynamodb_table_name, kpis)


def test_a_writer_behind_applies_the_newest_result_of_a_date(settings):
    # GIVEN three versions of a date, all stored (the runner recomputed it three times)
    s3, ddb = aws.client(settings, "s3"), aws.client(settings, "dynamodb")
    v1, v2, v3 = versions(DAY, 3, seed=31)
    messages = [_store(settings, s3, k) for k in (v1, v2, v3)]
    writer = Writer(settings=settings, s3=s3, ddb=ddb)

    # WHEN the oldest message arrives first, then the others
    try:
        first = writer.handle(messages[0])
        holds_after_first = kpi_items_of(ddb, settings.dynamodb_table_name, DAY)
        rest = [writer.handle(m) for m in messages[1:]]
    finally:
        writer.close()

    # THEN the first message already applied the newest result, the others were replays, and
    # every message was settled and counted
    assert first.version == v3.version and not first.skipped
    assert holds_after_first == kpi_items_of(ddb, settings.dynamodb_table_name, DAY)
    assert all(a.skipped and a.version == v3.version for a in rest)
    assert_holds_exactly(ddb, settings.dynamodb_table_name, v3)
    assert ledger.read_counters(ddb, settings.dynamodb_table_name)["dates_written"] == 3


def test_a_writer_told_not_to_skip_ahead_applies_the_named_version(settings):
    # GIVEN two stored versions of a date and a writer with apply_newest off
    s3, ddb = aws.client(settings, "s3"), aws.client(settings, "dynamodb")
    v1, v2 = versions(DAY, 2, seed=32)
    m1, _ = (_store(settings, s3, k) for k in (v1, v2))
    writer = Writer(settings=settings, s3=s3, ddb=ddb, options=WriterOptions(apply_newest=False))

    # WHEN the older message is handled
    try:
        applied = writer.handle(m1)
    finally:
        writer.close()

    # THEN exactly that version is stored
    assert applied.version == v1.version
    assert_holds_exactly(ddb, settings.dynamodb_table_name, v1)


def _stored_versions(settings, s3) -> list[int]:
    prefix = lake.results_prefix(settings, DAY)
    listed = s3.list_objects_v2(Bucket=settings.s3_bucket, Prefix=prefix).get("Contents", [])
    return sorted(lake.result_version(o["Key"]) or 0 for o in listed)


def test_superseded_results_are_pruned_to_the_last_two_and_the_newest_found_at_once(settings):
    # GIVEN five stored versions of a date
    s3, ddb = aws.client(settings, "s3"), aws.client(settings, "dynamodb")
    results = versions(DAY, 5, seed=33)
    messages = [_store(settings, s3, k) for k in results]
    listings: list[dict] = []
    s3.meta.events.register("provide-client-params.s3.ListObjectsV2", lambda params, **_: listings.append(params))
    writer = Writer(settings=settings, s3=s3, ddb=ddb)

    # WHEN the writer handles the oldest message
    try:
        applied = writer.handle(messages[0])
    finally:
        writer.close()

    # THEN it found the newest with one listing of one key, applied it, and kept only the newest
    # result and the one before it
    assert applied.version == results[-1].version
    assert listings[0].get("MaxKeys") == 1
    assert _stored_versions(settings, s3) == [results[-2].version, results[-1].version]
    assert_holds_exactly(ddb, settings.dynamodb_table_name, results[-1])


def test_a_message_whose_result_is_gone_but_superseded_is_stale_not_poison(settings):
    # GIVEN a date at v2 and the v1 message, whose result object has since gone (pruned, or expired)
    s3, ddb = aws.client(settings, "s3"), aws.client(settings, "dynamodb")
    v1, v2 = versions(DAY, 2, seed=34)
    m1, m2 = (_store(settings, s3, k) for k in (v1, v2))
    writer = Writer(settings=settings, s3=s3, ddb=ddb, options=WriterOptions(apply_newest=False))
    try:
        writer.handle(m2)
        s3.delete_object(Bucket=settings.s3_bucket, Key=m1.result_key)
        # WHEN it is redelivered, THEN it is recognised as superseded (done), not poison
        with pytest.raises(StaleResult):
            writer.handle(m1)
        # AND a missing result no newer version covers is still poison
        s3.delete_object(Bucket=settings.s3_bucket, Key=m2.result_key)
        ahead = m2.model_copy(
            update={"version": m2.version + 1, "result_key": lake.result_key(settings, DAY, m2.version + 1)}
        )
        with pytest.raises(PoisonMessage):
            writer.handle(ahead)
    finally:
        writer.close()
