"""The SQS consumer loop under faults, in-process, against the emulator over HTTP.

- slow but healthy work keeps its messages invisible (visibility heartbeat): never redelivered;
- the queue unreachable for a while (a TCP proxy cut): the loop logs, reports not-ready,
  backs off, and resumes on its own, losing nothing;
- stop during a batch: the batch finishes within the shutdown timeout, or is released
  (visible again at once) when it cannot.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from structlog.testing import capture_logs

from playcount.core import aws
from playcount.core.config import Settings
from playcount.core.consumer import Consumer, Outcome, SqsMessage, per_message
from playcount.core.resources import VALIDATED, resources
from playcount.core.worker import consume
from tests.support.proxy import proxy_to


async def _wait(condition, timeout=30.0, what=""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def _visible(sqs, url) -> list[str]:
    got = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=30)
    return [m["Body"] for m in got.get("Messages", [])]


async def test_slow_healthy_work_is_never_redelivered(settings):
    # GIVEN a 6 s visibility timeout and work that takes 10 s in a thread (like Spark or S3 I/O)
    session = aws.async_session()
    async with aws.async_client(session, settings, "sqs") as sqs:
        url = aws.queue_url(aws.client(settings, "sqs"), resources(settings).queue(VALIDATED).name)
        await sqs.send_message(QueueUrl=url, MessageBody="slow")
        deliveries: list[int] = []

        async def slow(m: SqsMessage) -> None:
            deliveries.append(m.receive_count)
            await asyncio.to_thread(time.sleep, 10)

        consumer = Consumer(sqs, url, per_message(slow), "test", visibility_timeout=6, wait_seconds=1)
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))

        # WHEN a rival consumer polls the same queue the whole time
        rival: list[str] = []
        await _wait(lambda: deliveries, what="first delivery")
        while consumer.handled == 0:
            got = await sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, VisibilityTimeout=1)
            rival += [m["Body"] for m in got.get("Messages", [])]
        stop.set()
        await task

        # THEN the work ran once, the rival never saw the message, and it is gone
        assert deliveries == [1]
        assert rival == []
        assert await _visible(sqs, url) == []


async def _survive_outage(consumer, proxy, direct, url) -> None:
    """The outage scenario: one message, a 6 s cut with two more arriving, recovery."""
    direct.send_message(QueueUrl=url, MessageBody="before")
    await _wait(lambda: consumer.handled == 1, what="the first message")

    # WHEN the endpoint is unreachable for 6 s while messages keep arriving
    proxy.cut()
    direct.send_message(QueueUrl=url, MessageBody="during-1")
    direct.send_message(QueueUrl=url, MessageBody="during-2")
    await _wait(lambda: not consumer.reachable, what="not-ready")
    await asyncio.sleep(6)
    proxy.restore()

    # THEN it resumes on its own and handles everything exactly once
    await _wait(lambda: consumer.handled == 3, timeout=40, what="recovery")
    # (connections the cut aborted may still fail once from the client's pool)
    await _wait(lambda: consumer.reachable, timeout=20, what="ready again")


async def test_queue_outage_is_logged_reported_and_survived(settings: Settings):
    # GIVEN a consumer whose SQS endpoint goes through a proxy we can cut
    with proxy_to(settings.aws_endpoint_url or "") as proxy:
        via_proxy = settings.model_copy(update={"aws_endpoint_url": f"http://127.0.0.1:{proxy.port}"})
        direct = aws.client(settings, "sqs")
        url = aws.queue_url(direct, resources(settings).queue(VALIDATED).name)
        bodies: list[str] = []

        async def record(m: SqsMessage) -> None:
            bodies.append(m.body)

        session = aws.async_session()
        with capture_logs() as logs:
            async with aws.async_client(session, via_proxy, "sqs", attempts=2) as sqs:
                # a receive cut mid-way may have taken a message whose answer never arrived: it
                # comes back after the visibility timeout, kept short here
                consumer = Consumer(sqs, url, per_message(record), "test", visibility_timeout=8, wait_seconds=1)
                stop = asyncio.Event()
                task = asyncio.create_task(consumer.run(stop))
                try:
                    await _survive_outage(consumer, proxy, direct, url)
                finally:
                    stop.set()
                    await asyncio.wait_for(task, 30)
        events = [e["event"] for e in logs]
        outage = logs[: events.index("consumer.reconnected")] if "consumer.reconnected" in events else logs
        failures = [e for e in outage if e["event"] == "consumer.queue_unreachable"]
        assert sorted(bodies) == ["before", "during-1", "during-2"]
        assert len(failures) >= 2, "it must keep retrying during the outage"
        # the waits follow the backoff: failure n waits between half and all of 0.5 s doubling to 10 s
        assert [e["failures"] for e in failures] == list(range(1, len(failures) + 1)), failures
        ceilings = [0.5, 1.0, 2.0, 4.0, 8.0] + [10.0] * len(failures)
        for e, ceiling in zip(failures, ceilings, strict=False):
            assert ceiling / 2 - 0.01 <= e["retry_in_s"] <= ceiling + 0.01, (e["failures"], e["retry_in_s"])
        assert any(e["event"] == "consumer.reconnected" for e in logs)
        assert any(e["event"] == "aws.unreachable" for e in logs), "each failed attempt is logged"
        assert task.exception() is None


def _factory(handler):
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def factory(settings, session):
        yield per_message(handler)

    return factory


async def test_stop_lets_the_batch_in_hand_finish(settings):
    sqs = aws.client(settings, "sqs")
    url = aws.queue_url(sqs, resources(settings).queue(VALIDATED).name)
    sqs.send_message(QueueUrl=url, MessageBody="work")
    started, finished = asyncio.Event(), []

    async def two_seconds(m: SqsMessage) -> None:
        started.set()
        await asyncio.to_thread(time.sleep, 2)
        finished.append(m.body)

    stop = asyncio.Event()
    run = asyncio.create_task(
        consume(settings, "test", VALIDATED, _factory(two_seconds), stop=stop, shutdown_timeout=10)
    )
    await asyncio.wait_for(started.wait(), 30)
    stop.set()
    assert await asyncio.wait_for(run, 15) is True
    assert finished == ["work"]
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", [])
    assert got == [], "finished work is deleted"


async def test_stop_releases_work_that_cannot_finish_in_time(settings):
    sqs = aws.client(settings, "sqs")
    url = aws.queue_url(sqs, resources(settings).queue(VALIDATED).name)
    sqs.send_message(QueueUrl=url, MessageBody="stuck")
    started = asyncio.Event()

    async def stuck(m: SqsMessage) -> None:
        started.set()
        await asyncio.sleep(3600)

    stop = asyncio.Event()
    run = asyncio.create_task(consume(settings, "test", VALIDATED, _factory(stuck), stop=stop, shutdown_timeout=1))
    await asyncio.wait_for(started.wait(), 30)
    t0 = time.monotonic()
    stop.set()
    assert await asyncio.wait_for(run, 15) is False, "abandoned work is reported"
    assert time.monotonic() - t0 < 8
    # the message is visible again at once (not after the 60 s visibility timeout)
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", [])
    assert [m["Body"] for m in got] == ["stuck"]


async def test_an_outage_met_by_the_handler_reports_not_ready_at_once(settings: Settings):
    # GIVEN a consumer whose handler talks to S3 through a proxy we can cut (its own retries
    # can take far longer than an outage: the consumer does not poll while it waits)
    with proxy_to(settings.aws_endpoint_url or "") as proxy, contextlib.ExitStack() as stack:
        via_proxy = settings.model_copy(update={"aws_endpoint_url": f"http://127.0.0.1:{proxy.port}"})
        s3 = aws.client(via_proxy, "s3")
        direct = aws.client(settings, "sqs")
        url = aws.queue_url(direct, resources(settings).queue(VALIDATED).name)
        handled: list[str] = []

        async def read_s3(m: SqsMessage) -> None:
            await asyncio.to_thread(s3.head_bucket, Bucket=settings.s3_bucket)
            handled.append(m.body)

        session = aws.async_session()
        async with aws.async_client(session, settings, "sqs") as sqs:
            consumer = Consumer(sqs, url, per_message(read_s3), "test", visibility_timeout=30, wait_seconds=1)
            stop = asyncio.Event()
            logs = stack.enter_context(capture_logs())
            task = asyncio.create_task(consumer.run(stop))
            try:
                # WHEN the endpoint goes away just before a message arrives
                proxy.cut()
                direct.send_message(QueueUrl=url, MessageBody="during")
                await _wait(lambda: consumer.busy, what="the handler to start")

                # THEN the worker says not-ready while its handler is still retrying
                await _wait(lambda: not consumer.reachable, timeout=5, what="not-ready during the handler's retries")
                assert consumer.busy and handled == []
                proxy.restore()

                # AND ready again once its calls get through, with the message handled and the
                # recovery logged
                await _wait(lambda: handled == ["during"] and consumer.reachable, timeout=60, what="recovery")
            finally:
                proxy.restore()
                stop.set()
                await asyncio.wait_for(task, 30)
        assert any(e["event"] == "consumer.reconnected" for e in logs)


async def test_a_message_the_handler_gave_no_outcome_is_retried_not_deleted(settings):
    # GIVEN a batch handler that forgets to report on a message the first time it sees it
    sqs_sync = aws.client(settings, "sqs")
    url = aws.queue_url(sqs_sync, resources(settings).queue(VALIDATED).name)
    sqs_sync.send_message(QueueUrl=url, MessageBody="forgotten")
    seen: list[int] = []

    async def forgetful(messages: list[SqsMessage]) -> dict:
        seen.extend(m.receive_count for m in messages)
        return {} if len(seen) == 1 else {m.message_id: Outcome.DONE for m in messages}

    session = aws.async_session()
    async with aws.async_client(session, settings, "sqs") as sqs:
        consumer = Consumer(sqs, url, forgetful, "test", visibility_timeout=30, wait_seconds=1)
        stop = asyncio.Event()
        with capture_logs() as logs:
            task = asyncio.create_task(consumer.run(stop))
            try:
                # THEN it comes back (fail closed) and is deleted only once an outcome says DONE
                await _wait(lambda: len(seen) >= 2 and consumer.handled == 1, timeout=30, what="the retry")
            finally:
                stop.set()
                await asyncio.wait_for(task, 30)
    assert seen == [1, 2]
    assert any(e["event"] == "consumer.outcome_missing" for e in logs)
    assert sqs_sync.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []
