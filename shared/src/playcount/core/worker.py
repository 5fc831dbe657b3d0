"""Wiring shared by the three queue workers: logging, signals, metrics, heartbeat, the loop.

SIGTERM/SIGINT stop picking new messages; the batch in hand gets `shutdown_timeout` seconds
to finish, then is cancelled (its messages are not deleted, so SQS redelivers them).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import start_http_server

from playcount.core import aws, logs, metrics
from playcount.core.config import Settings, load_settings
from playcount.core.consumer import BatchHandler, Consumer
from playcount.core.resources import resources

log = structlog.get_logger(__name__)

HandlerFactory = Callable[[Settings, Any], AbstractAsyncContextManager[BatchHandler]]


def record_health(path: str | None, service: str) -> None:
    """Heartbeat for container health checks: the file's mtime is the last poll."""
    metrics.LAST_POLL.labels(service).set(time.time())
    if path:
        Path(path).write_text(f"{time.time():.3f}\n")


async def consume(
    settings: Settings,
    service: str,
    stage: str,
    handler_factory: Callable[[Settings, Any], AbstractAsyncContextManager[BatchHandler]],
    *,
    stop: asyncio.Event,
    burst: bool = False,
    batch_window: float = 0.0,
    max_batch: int = 10,
    shutdown_timeout: float = 30.0,
) -> None:
    """Run one worker's loop on the queue of `stage` until `stop` (or empty, with `burst`)."""
    session = aws.async_session()
    async with aws.async_client(session, settings, "sqs") as sqs:
        url = (await sqs.get_queue_url(QueueName=resources(settings).queue(stage).name))["QueueUrl"]
        async with handler_factory(settings, session) as handler:
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
            )
            task = asyncio.create_task(consumer.run(stop, burst=burst))
            await _wait_then_drain(task, stop, shutdown_timeout)


async def _wait_then_drain(task: asyncio.Task[None], stop: asyncio.Event, timeout: float) -> None:
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if not task.done():
        try:
            await asyncio.wait_for(task, timeout)
        except TimeoutError:
            log.warning("worker.shutdown_timeout", timeout=timeout)
    stopper.cancel()
    if task.done() and not task.cancelled() and task.exception():
        raise task.exception()  # type: ignore[misc]


def run_worker(service: str, stage: str, handler_factory: HandlerFactory, **options: Any) -> None:
    """Entry point body of a worker process: settings, logs, metrics, signals, loop; exit 0 on SIGTERM."""
    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format, service=service)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr="0.0.0.0")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await consume(settings, service, stage, handler_factory, stop=stop, **options)

    asyncio.run(main())
    log.info("worker.exit", service=service)
