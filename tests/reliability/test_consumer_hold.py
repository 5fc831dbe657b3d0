"""A runner batch holds while the validator's queue has a backlog, and only then.

In-process consumer loop against the emulator over HTTP, with the worker's real backlog check.
"""

from __future__ import annotations

import asyncio
import contextlib

from playcount.core import aws
from playcount.core.consumer import Consumer, Outcome, SqsMessage
from playcount.core.resources import S3_EVENTS, VALIDATED, resources
from playcount.core.worker import backlog_of


async def _taken(direct, url: str, timeout: float = 10.0) -> None:
    """Until the consumer has received every message sent (none is visible on the queue)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        attributes = direct.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        if attributes["Attributes"]["ApproximateNumberOfMessages"] == "0":
            return
        assert asyncio.get_running_loop().time() < deadline, "the consumer never received the message"
        await asyncio.sleep(0.02)


async def _batches_seen(settings, *, upstream_backlog: bool) -> list[list[str]]:
    """Send `a`; once its batch window is over, `b`; return the batches the consumer handled."""
    direct = aws.client(settings, "sqs")
    spec = resources(settings)
    url = aws.queue_url(direct, spec.queue(VALIDATED).name)
    upstream = aws.queue_url(direct, spec.queue(S3_EVENTS).name)
    direct.purge_queue(QueueUrl=upstream)  # S3's test event, left there by the bootstrap
    if upstream_backlog:
        direct.send_message(QueueUrl=upstream, MessageBody="a file still to validate")
    batches: list[list[str]] = []
    both = asyncio.Event()
    window_closed = asyncio.Event()  # the consumer asked whether to hold: its batch window is over

    async def handle(messages: list[SqsMessage]) -> dict[str, Outcome]:
        batches.append(sorted(m.body for m in messages))
        if sum(map(len, batches)) >= 2:
            both.set()
        return {m.message_id: Outcome.DONE for m in messages}

    session = aws.async_session()
    async with aws.async_client(session, settings, "sqs") as sqs:
        backlog = backlog_of(sqs, spec.queue(S3_EVENTS).name)

        async def hold() -> bool:
            window_closed.set()
            return await backlog()

        consumer = Consumer(
            sqs, url, handle, "test", visibility_timeout=30, wait_seconds=1, max_batch=10, batch_window=0.3,
            hold=hold, max_hold=10.0,
        )  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        direct.send_message(QueueUrl=url, MessageBody="a")
        await _taken(direct, url)
        # the scenario: b arrives after the 0.3 s batch window of a closed
        await asyncio.wait_for(window_closed.wait(), 10)
        direct.send_message(QueueUrl=url, MessageBody="b")
        await _taken(direct, url)
        if upstream_backlog:  # the validator takes the last file
            got = direct.receive_message(QueueUrl=upstream, VisibilityTimeout=60)["Messages"]
            direct.delete_message(QueueUrl=upstream, ReceiptHandle=got[0]["ReceiptHandle"])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(both.wait(), 20)
        stop.set()
        await task
    return batches


async def test_a_batch_gathers_while_files_wait_upstream(settings):
    # GIVEN a file waiting on the validator's queue, WHEN two validated messages arrive a batch window apart
    # THEN they are handled in one batch (one recomputation, not two)
    assert await _batches_seen(settings, upstream_backlog=True) == [["a", "b"]]


async def test_a_lone_file_is_never_held(settings):
    # GIVEN nothing waiting upstream, WHEN the same two messages arrive
    # THEN the first is handled at once, alone
    assert await _batches_seen(settings, upstream_backlog=False) == [["a"], ["b"]]
