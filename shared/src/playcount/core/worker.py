"""Wiring shared by the three queue workers: logging, signals, metrics, heartbeat, the loop.

SIGTERM/SIGINT stop picking new messages; the batch in hand gets `shutdown_timeout` seconds
to finish, then is cancelled and its messages are released (visible again at once, not
deleted, so SQS redelivers them). The process then exits 0 even if a handler thread is still
running: its work is crash-safe by design, and a stuck thread must not hold the exit hostage.
Start-up (finding the queue, building the handler) retries with backoff while AWS is
unreachable, so a worker restarted during an outage waits instead of crash-looping.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from prometheus_client import start_http_server

from playcount.core import aws, logs, metrics
from playcount.core.config import Settings
from playcount.core.consumer import BatchHandler, Consumer, reconnecting
from playcount.core.resources import resources

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient
    from types_aiobotocore_sqs.literals import QueueAttributeNameType

log = structlog.get_logger(__name__)

S = TypeVar("S", bound=Settings)
HandlerFactory = Callable[[S, Any], AbstractAsyncContextManager[BatchHandler]]
T = TypeVar("T")
CONSUMER_SQS_ATTEMPTS = 2


class Stopped(Exception):
    """Stop was requested before start-up completed."""


def record_health(path: str | None, service: str) -> None:
    """Heartbeat for container health checks: the file's mtime is the last poll."""
    metrics.LAST_POLL.labels(service).set(time.time())
    if path:
        Path(path).write_text(f"{time.time():.3f}\n")


async def consume(
    settings: S,
    service: str,
    stage: str,
    handler_factory: HandlerFactory[S],
    *,
    stop: asyncio.Event,
    burst: bool = False,
    batch_window: float = 0.0,
    max_batch: int = 10,
    shutdown_timeout: float = 30.0,
    hold_while_backlog: str | None = None,
    max_hold: float = 0.0,
) -> bool:
    """Run one worker's loop on the queue of `stage` until `stop` (or empty, with `burst`).

    With `hold_while_backlog` (an upstream stage), a batch keeps gathering for up to `max_hold`
    seconds while that stage's queue has messages waiting.
    Returns False when the batch in hand had to be abandoned (released) at shutdown.
    """
    session = aws.async_session()
    # few retries on the loop's own client: an outage surfaces at the next poll, where the
    # consumer logs it, reports not-ready and backs off (handlers keep the full retry budget)
    sqs_client = aws.async_client(session, settings, "sqs", attempts=CONSUMER_SQS_ATTEMPTS)
    async with sqs_client as sqs, AsyncExitStack() as resources_in_use:
        name = resources(settings).queue(stage).name
        try:
            url = (await _starting(lambda: sqs.get_queue_url(QueueName=name), stop, "queue"))["QueueUrl"]
            handler = await _starting(
                lambda: resources_in_use.enter_async_context(handler_factory(settings, session)), stop, "handler"
            )
        except Stopped:
            log.info("worker.stopped_before_start", service=service)
            return True
        hold = None
        if hold_while_backlog is not None:
            hold = backlog_of(sqs, resources(settings).queue(hold_while_backlog).name)
        consumer = Consumer(
            sqs=sqs,
            queue_url=url,
            handler=handler,
            service=service,
            visibility_timeout=settings.sqs_visibility_timeout,
            wait_seconds=0 if burst else settings.sqs_wait_seconds,
            max_batch=max_batch,
            batch_window=batch_window,
            on_poll=lambda: record_health(settings.health_file, service),
            hold=hold,
            max_hold=max_hold,
        )
        task = asyncio.create_task(consumer.run(stop, burst=burst))
        return await _wait_then_drain(task, stop, shutdown_timeout)


def backlog_of(sqs: SQSClient, queue: str) -> Callable[[], Awaitable[bool]]:
    """True while `queue` has messages waiting or in flight (a validator takes up to ten files
    at once, so visible ones alone miss most of a burst). A message in retry backoff also
    counts: it can hold a batch up to `max_hold`, never longer."""
    url: str | None = None

    async def waiting() -> bool:
        nonlocal url
        if url is None:
            url = (await sqs.get_queue_url(QueueName=queue))["QueueUrl"]
        names: list[QueueAttributeNameType] = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names))["Attributes"]
        return any(int(attributes.get(name, 0)) > 0 for name in names)

    return waiting


async def _starting(call: Callable[[], Awaitable[T]], stop: asyncio.Event, what: str) -> T:
    """`call()`, retried with backoff while it fails (AWS unreachable), until `stop`."""
    async for attempt in reconnecting(stop, "worker.start_failed", step=what):
        if stop.is_set():
            raise Stopped
        with attempt:
            return await call()
    raise AssertionError("unreachable: the retries end by returning or raising")


async def _wait_then_drain(task: asyncio.Task[None], stop: asyncio.Event, timeout: float) -> bool:
    """Wait for the loop; once `stop` is set give it `timeout` s. False if it had to be cancelled."""
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    drained = True
    if not task.done():
        try:
            await asyncio.wait_for(task, timeout)
        except TimeoutError:
            log.warning("worker.shutdown_timeout", timeout=timeout, effect="batch in hand released to the queue")
            drained = False
    stopper.cancel()
    if task.done() and not task.cancelled() and task.exception():
        raise task.exception()  # type: ignore[misc]
    return drained


def run_worker(settings: S, service: str, stage: str, handler_factory: HandlerFactory[S], **options: Any) -> None:
    """Entry point body of a worker process: logs, metrics, signals, loop; exit 0 on SIGTERM."""
    logs.configure(settings.log_level, settings.log_format, service=service)
    if settings.metrics_port:
        # bandit B104: metrics are scraped from outside the container (Prometheus, ECS), never via the load balancer
        start_http_server(settings.metrics_port, addr="0.0.0.0")  # nosec B104

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if not await consume(settings, service, stage, handler_factory, stop=stop, **options):
            # a handler thread is still running: asyncio.run would wait for it without bound
            log.warning("worker.exit", service=service, abandoned=True)
            sys.stderr.flush()
            sys.stdout.flush()
            os._exit(0)

    asyncio.run(main())
    log.info("worker.exit", service=service)
