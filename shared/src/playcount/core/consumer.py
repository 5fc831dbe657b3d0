"""The SQS consumer loop every worker runs.

- long-polls a queue, optionally gathering a micro-batch for `batch_window` seconds;
- hands the batch to a handler, which reports an outcome per message (partial batch failure:
  one bad message never fails its neighbours);
- keeps in-flight messages invisible while work runs (visibility heartbeat);
- deletes a message only after its handler returned DONE, i.e. after the work is durable;
- poison messages become visible again at once, so they reach the DLQ after the redrive
  count; transient failures back off exponentially with jitter;
- `stop` ends the loop after the batch in hand; `burst=True` drains the queue and returns.
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from playcount.core import metrics
from playcount.core.errors import PoisonMessage, StaleResult

log = structlog.get_logger(__name__)

MAX_BACKOFF_SECONDS = 300


class Outcome(enum.Enum):
    DONE = "done"
    RETRY_NOW = "poison"
    RETRY_LATER = "retry"


@dataclass(frozen=True)
class SqsMessage:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    sent_at: float | None = None

    @classmethod
    def from_sqs(cls, raw: dict[str, Any]) -> SqsMessage:
        attrs = raw.get("Attributes", {})
        sent = attrs.get("SentTimestamp")
        return cls(
            message_id=raw["MessageId"],
            receipt_handle=raw["ReceiptHandle"],
            body=raw["Body"],
            receive_count=int(attrs.get("ApproximateReceiveCount", "1")),
            sent_at=int(sent) / 1000 if sent else None,
        )


BatchHandler = Callable[[list[SqsMessage]], Awaitable[dict[str, Outcome]]]
MessageHandler = Callable[[SqsMessage], Awaitable[None]]


def per_message(handler: MessageHandler, *, concurrency: int = 4) -> BatchHandler:
    """Run `handler` on each message of a batch, at most `concurrency` at once."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(message: SqsMessage) -> Outcome:
        async with semaphore:
            with structlog.contextvars.bound_contextvars(message_id=message.message_id):
                return await run_guarded(handler, message)

    async def batch(messages: list[SqsMessage]) -> dict[str, Outcome]:
        outcomes = await asyncio.gather(*(one(m) for m in messages))
        return {m.message_id: o for m, o in zip(messages, outcomes, strict=True)}

    return batch


async def run_guarded(handler: MessageHandler, message: SqsMessage) -> Outcome:
    """The outcome of one message: DONE, RETRY_NOW for poison, RETRY_LATER for anything else."""
    try:
        await handler(message)
    except StaleResult as exc:
        log.info("message.stale", reason=str(exc))
        return Outcome.DONE
    except PoisonMessage as exc:
        log.warning("message.poison", reason=str(exc), receive_count=message.receive_count)
        return Outcome.RETRY_NOW
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("message.failed", error=repr(exc), receive_count=message.receive_count)
        return Outcome.RETRY_LATER
    return Outcome.DONE


def backoff_seconds(receive_count: int) -> int:
    """Exponential backoff with full jitter, capped."""
    ceiling = min(MAX_BACKOFF_SECONDS, 2 ** min(receive_count, 16))
    return int(random.uniform(ceiling / 2, ceiling))


@dataclass
class Consumer:
    sqs: Any
    queue_url: str
    handler: BatchHandler
    service: str
    visibility_timeout: int = 60
    wait_seconds: int = 2
    max_batch: int = 10
    batch_window: float = 0.0
    on_poll: Callable[[], None] | None = None
    busy: bool = field(default=False, init=False)
    handled: int = field(default=0, init=False)

    async def run(self, stop: asyncio.Event, *, burst: bool = False) -> None:
        """Consume until `stop` is set (or, with `burst`, until the queue is empty)."""
        log.info("consumer.start", queue=self.queue_url, burst=burst)
        while not stop.is_set():
            messages = await self._receive(stop)
            if self.on_poll:
                self.on_poll()
            if not messages:
                if burst:
                    break
                continue
            await self.process(messages)
        log.info("consumer.stop", queue=self.queue_url, handled=self.handled)

    async def _receive_once(self, count: int, wait: int) -> list[SqsMessage]:
        response = await self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(10, count)),
            WaitTimeSeconds=wait,
            VisibilityTimeout=self.visibility_timeout,
            AttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        )
        return [SqsMessage.from_sqs(m) for m in response.get("Messages", [])]

    async def _receive(self, stop: asyncio.Event) -> list[SqsMessage]:
        messages = await self._receive_once(self.max_batch, self.wait_seconds)
        if not messages or self.batch_window <= 0:
            return messages
        deadline = time.monotonic() + self.batch_window
        while len(messages) < self.max_batch and time.monotonic() < deadline and not stop.is_set():
            more = await self._receive_once(self.max_batch - len(messages), 0)
            if not more:
                await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
                continue
            messages += more
        return messages

    async def process(self, messages: list[SqsMessage]) -> dict[str, Outcome]:
        """Handle one batch and settle every message in it."""
        self.busy = True
        metrics.BUSY.labels(self.service).set(1)
        keepalive = asyncio.create_task(self._keep_invisible(messages))
        started = time.perf_counter()
        try:
            outcomes = await self.handler(messages)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a handler bug must not kill the loop; the batch is retried
            log.exception("batch.failed", error=repr(exc))
            outcomes = {m.message_id: Outcome.RETRY_LATER for m in messages}
        finally:
            keepalive.cancel()
            metrics.HANDLE_SECONDS.labels(self.service).observe(time.perf_counter() - started)
        try:
            await self._settle(messages, outcomes)
        finally:
            self.busy = False
            metrics.BUSY.labels(self.service).set(0)
        return outcomes

    async def _settle(self, messages: list[SqsMessage], outcomes: dict[str, Outcome]) -> None:
        done = [m for m in messages if outcomes.get(m.message_id, Outcome.DONE) is Outcome.DONE]
        for i in range(0, len(done), 10):
            chunk = done[i : i + 10]
            await self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m.receipt_handle} for n, m in enumerate(chunk)],
            )
        for m in messages:
            outcome = outcomes.get(m.message_id, Outcome.DONE)
            metrics.MESSAGES.labels(self.service, outcome.value).inc()
            if outcome is Outcome.DONE:
                continue
            delay = 0 if outcome is Outcome.RETRY_NOW else backoff_seconds(m.receive_count)
            await self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=m.receipt_handle, VisibilityTimeout=delay
            )
        self.handled += len(done)

    async def _keep_invisible(self, messages: list[SqsMessage]) -> None:
        """Extend visibility while slow work runs, so healthy work is never redelivered mid-way."""
        interval = max(1.0, self.visibility_timeout / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                for first in range(0, len(messages), 10):
                    chunk = messages[first : first + 10]
                    await self.sqs.change_message_visibility_batch(
                        QueueUrl=self.queue_url,
                        Entries=[
                            {
                                "Id": str(n),
                                "ReceiptHandle": m.receipt_handle,
                                "VisibilityTimeout": self.visibility_timeout,
                            }
                            for n, m in enumerate(chunk)
                        ],
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("visibility.extend_failed", error=repr(exc))
