"""The validator as a real process on the real S3 -> SQS notification path."""

from __future__ import annotations

import gzip

from playcount.core import aws, lake
from playcount.core.consumer import Outcome, SqsMessage
from playcount.core.messages import parse_s3_event
from playcount.core.resources import S3_EVENTS, resources
from playcount.validator.main import handler_factory
from tests.support.helpers import wait_for

SERVICE = ("ingest-validator",)
GOOD = "user_id,track_id,listen_time\nu1,t1,2024-07-01 10:00:00\nu2,t2,2024-07-01 11:00:00\n"


def _validated(bucket, refs):
    """The reports of `refs` once every one of them exists, else None."""
    keys = [lake.report_key(bucket.settings, lake.file_id(r.key, r.etag)) for r in refs]
    present = set(bucket.keys(f"{bucket.settings.s3_processing_metadata_prefix}files/"))
    return [bucket.json(k) for k in keys] if present >= set(keys) else None


def test_odd_keys_arrive_through_s3_notifications_and_are_judged(settings, stack, bucket):
    # GIVEN the validator running, and metadata validated
    service = stack(settings, services=SERVICE)
    metadata = bucket.metadata()
    wait_for(lambda: _validated(bucket, metadata), timeout=60, what="metadata")
    # WHEN producers upload files under keys with spaces, '+', '%', unicode and dot segments
    names = [
        "with space.csv",
        "plus+sign.csv",
        "100%.csv",
        "%41already%20encoded.csv",
        "ünï cødé/日本語.csv",
        "../up.csv",
        "a/./b/../c.csv",
        "/double-slash.csv",
        "day 1/file (1) & co.csv.gz",
    ]
    bodies = [gzip.compress(GOOD.encode()) if n.endswith(".gz") else GOOD.encode() for n in names]
    refs = [bucket.stream(n, body) for n, body in zip(names, bodies, strict=True)]
    # THEN each one is judged under its exact key, accepted and archived under the same key
    reports = wait_for(lambda: _validated(bucket, refs), timeout=90, what="reports of odd keys")
    for ref, body, report in zip(refs, bodies, reports, strict=True):
        assert (report["key"], report["status"], report["rows_accepted"]) == (ref.key, "accepted", 2)
        assert bucket.read(lake.archive_key(settings, ref.key)) == body
        assert not bucket.exists(ref.key)
    assert service.restarts == {} and service.procs["ingest-validator"].poll() is None


def test_a_body_that_is_not_an_s3_event_reaches_the_dlq_without_blocking_its_neighbours(settings, stack, bucket):
    # GIVEN poison bodies and real uploads waiting together in the queue, so the first receive
    # (up to 10 messages) hands them to the validator in one batch
    sqs = aws.client(settings, "sqs")
    spec = resources(settings).queue(S3_EVENTS)
    url = aws.queue_url(sqs, spec.name)
    dlq_url = aws.queue_url(sqs, spec.dlq_name)
    poison = ["not json at all", '{"Records": []}', '{"Records": [{"eventName": "ObjectCreated:Put"}]}', "[1, 2]"]
    for body in poison:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    refs = bucket.metadata() + [bucket.stream(f"neighbour-{i}.csv", GOOD) for i in range(3)]
    # WHEN the validator starts
    service = stack(settings, services=SERVICE)
    # THEN the neighbours are judged at once, while each poison message is retried until the DLQ takes it
    wait_for(lambda: _validated(bucket, refs), timeout=90, what="neighbours validated")

    def dead_letters():
        attrs = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"]) == len(poison)

    wait_for(dead_letters, timeout=120, what="poison messages in the DLQ")
    bodies = []
    while len(bodies) < len(poison):
        got = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        bodies += [m["Body"] for m in got.get("Messages", [])]
    assert sorted(bodies) == sorted(poison)
    assert service.restarts == {} and service.procs["ingest-validator"].poll() is None


async def test_one_batch_of_poison_and_good_messages_settles_each_on_its_own(settings, bucket):
    # GIVEN the raw notifications of metadata and two stream files, and poison bodies, in one batch
    sqs = aws.client(settings, "sqs")
    url = aws.queue_url(sqs, resources(settings).queue(S3_EVENTS).name)
    refs = bucket.metadata() + [bucket.stream(f"good-{i}.csv", GOOD) for i in range(2)]
    bodies = []
    while len(bodies) < len(refs):
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            if parse_s3_event(m["Body"]):  # (the s3:TestEvent names no object)
                bodies.append(m["Body"])
    batch = ["not json", *bodies[:2], '{"Records": []}', *bodies[2:]]
    messages = [SqsMessage(message_id=str(i), receipt_handle="-", body=b, receive_count=1) for i, b in enumerate(batch)]
    # WHEN the validator's batch handler runs them together
    async with handler_factory(settings, aws.async_session()) as handle:
        outcomes = await handle(messages)
    # THEN only the poison messages are retried (towards the DLQ); every file was judged
    assert {i: o for i, o in outcomes.items() if o is not Outcome.DONE} == {
        "0": Outcome.RETRY_NOW,
        "3": Outcome.RETRY_NOW,
    }
    assert [r["status"] for r in _validated(bucket, refs)] == ["accepted"] * 4
