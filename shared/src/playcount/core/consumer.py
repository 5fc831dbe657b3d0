"""The SQS consumer loop every worker runs.

- long-polls a queue, optionally gathering a micro-batch for `batch_window` seconds, and
  longer (up to `max_hold` s, at most half the visibility timeout) while `hold()` says more
  is on its way (the runner holds while the validator's queue has a backlog, so a burst of
  files costs a few recomputations of their dates, not one per file);
- hands the batch to a handler, which reports an outcome per message (partial batch failure:
  one bad message never fails its neighbours);
- keeps in-flight messages invisible while work runs (visibility heartbeat);
- deletes a message only after its handler returned DONE, i.e. after the work is durable (a
  message the handler reported nothing for is retried: the loop fails closed);
- poison messages become visible again at once, so they reach the DLQ after the redrive
  count; transient failures back off exponentially with jitter;
- an unreachable queue (the emulator or SQS down) is logged and retried with capped
  exponential backoff; the loop never dies of it, and `reachable` says whether the last
  call got through; failing to delete or release a message is logged, not fatal (it is
  redelivered, and every handler is idempotent);
- `stop` ends the loop after the batch in hand; `burst=True` drains the queue and returns;
  a batch cancelled mid-way (shutdown timeout) is released: visible again at once.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from tenacity import AsyncRetrying

from playcount.core import aws, metrics, retrying
from playcount.core.errors import PoisonMessage, StaleResult

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient
    from types_aiobotocore_sqs.type_defs import MessageTypeDef

log = structlog.get_logger(__name__)

MAX_BACKOFF_SECONDS = 300
RECONNECT_BASE_SECONDS = 0.5
MAX_RECONNECT_SECONDS = 10.0


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
    def from_sqs(cls, raw: MessageTypeDef) -> SqsMessage:
        attrs = raw.get("Attributes", {})
        sent = attrs.get("SentTimestamp")
        return cls(
            message_id=raw["MessageId"],
            receipt_handle=raw["ReceiptHandle"],
            body=raw["Body"],
            receive_count=int(attrs.get("ApproximateReceiveCount", "1")),
            sent_at=int(sent) / 1000 if sent else None,
        )


# A batch handler reports one outcome per message of the batch, by message id. It fails closed:
# a message without an outcome is retried (and logged as `consumer.outcome_missing`), never deleted.
Outcomes = dict[str, Outcome]
BatchHandler = Callable[[list[SqsMessage]], Awaitable[Outcomes]]
MessageHandler = Callable[[SqsMessage], Awaitable[None]]


def per_message(handler: MessageHandler, *, concurrency: int = 4) -> BatchHandler:
    """Run `handler` on each message of a batch, at most `concurrency` at once."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(message: SqsMessage) -> Outcome:
        async with semaphore:
            with structlog.contextvars.bound_contextvars(message_id=message.message_id):
                return await run_guarded(handler, message)

    async def batch(messages: list[SqsMessage]) -> Outcomes:
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


def reconnecting(stop: asyncio.Event, event: str, **context: Any) -> AsyncRetrying:
    """The core retry policy while AWS is unreachable: any error is retried, with no bound but
    `stop` (which also cuts a wait short); waits 0.5 s doubling to 10 s, each at least half of
    its ceiling (an endpoint that is down is not polled again at once). Logged as `event`."""
    return retrying.async_retrying(
        event=event,
        retry_on=retrying.is_error,
        base=RECONNECT_BASE_SECONDS,
        cap=MAX_RECONNECT_SECONDS,
        floor=0.5,
        sleep=retrying.sleep_until(stop),
        level=logging.WARNING,
        **context,
    )


@dataclass
class Consumer:
    sqs: SQSClient
    queue_url: str
    handler: BatchHandler
    service: str
    visibility_timeout: int = 60
    wait_seconds: int = 2
    max_batch: int = 10
    batch_window: float = 0.0
    on_poll: Callable[[], None] | None = None
    hold: Callable[[], Awaitable[bool]] | None = None
    max_hold: float = 0.0
    busy: bool = field(default=False, init=False)
    handled: int = field(default=0, init=False)
    reachable: bool = field(default=True, init=False)

    async def run(self, stop: asyncio.Event, *, burst: bool = False) -> None:
        """Consume until `stop` is set (or, with `burst`, until the queue is empty)."""
        log.info("consumer.start", queue=self.queue_url, burst=burst)
        # any call of this process that finds AWS unreachable (a handler's S3 read, say) means
        # not-ready until the next poll gets through
        forget = aws.on_unreachable(lambda: self._set_reachable(False))
        try:
            await self._loop(stop, burst)
        finally:
            forget()
        log.info("consumer.stop", queue=self.queue_url, handled=self.handled)

    async def _loop(self, stop: asyncio.Event, burst: bool) -> None:
        while not stop.is_set():
            polled = await self._poll(stop)
            if polled is None:
                break
            messages, failures = polled
            if failures or not self.reachable:  # (a handler's failed calls also make it not-ready)
                log.info("consumer.reconnected", queue=self.queue_url, after_failures=failures)
            self._set_reachable(True)
            if self.on_poll:
                self.on_poll()
            if not messages:
                if burst:
                    break
                continue
            await self.process(messages)

    async def _poll(self, stop: asyncio.Event) -> tuple[list[SqsMessage], int] | None:
        """The next messages, and how many polls failed before them; None once `stop` is set.

        An unreachable queue is logged (`consumer.queue_unreachable`), marks the consumer
        not-ready, and is polled again after the reconnect backoff, until `stop`.
        """
        async for attempt in reconnecting(stop, "consumer.queue_unreachable", queue=self.queue_url):
            if stop.is_set():
                return None
            with attempt:
                try:
                    messages = await self._receive(stop)
                except Exception:
                    self._set_reachable(False)
                    raise
                return messages, attempt.retry_state.attempt_number - 1
        raise AssertionError("unreachable: the retries end by returning or raising")

    async def _receive_once(self, count: int, wait: int) -> list[SqsMessage]:
        response = await self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(10, count)),
            WaitTimeSeconds=wait,
            VisibilityTimeout=self.visibility_timeout,
            AttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        )
        return [SqsMessage.from_sqs(m) for m in response.get("Messages", [])]

    def _set_reachable(self, up: bool) -> None:
        self.reachable = up
        metrics.QUEUE_UP.labels(self.service).set(1 if up else 0)

    async def _receive(self, stop: asyncio.Event) -> list[SqsMessage]:
        messages = await self._receive_once(self.max_batch, self.wait_seconds)
        if not messages or self.batch_window <= 0:
            return messages
        deadline = time.monotonic() + self.batch_window
        while len(messages) < self.max_batch and time.monotonic() < deadline and not stop.is_set():
            try:
                more = await self._receive_once(self.max_batch - len(messages), 0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep what we hold; the next poll reports the outage
                log.warning("consumer.batch_window_cut", error=repr(exc), holding=len(messages))
                break
            if not more:
                await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
                continue
            messages += more
        return await self._hold(messages, stop)

    async def _hold(self, messages: list[SqsMessage], stop: asyncio.Event) -> list[SqsMessage]:
        """Keep gathering while `hold()` says more is coming, for at most `max_hold` seconds."""
        if self.hold is None or self.max_hold <= 0:
            return messages
        started = time.monotonic()
        deadline = started + min(self.max_hold, self.visibility_timeout / 2)
        held = False
        while len(messages) < self.max_batch and time.monotonic() < deadline and not stop.is_set():
            try:
                if not await self.hold():
                    break
                held = True
                # a 1 s long poll: it returns as soon as the next message arrives, which is when
                # the backlog may have changed (no fixed sleep between checks)
                messages += await self._receive_once(self.max_batch - len(messages), 1)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # holding is an optimization: on any doubt, work now
                log.warning("consumer.hold_failed", error=repr(exc), holding=len(messages))
                break
        if held:
            log.info("consumer.held", seconds=round(time.monotonic() - started, 2), messages=len(messages))
        return messages

    async def process(self, messages: list[SqsMessage]) -> Outcomes:
        """Handle one batch and settle every message in it."""
        self.busy = True
        metrics.BUSY.labels(self.service).set(1)
        keepalive = asyncio.create_task(self._keep_invisible(messages))
        started = time.perf_counter()
        try:
            outcomes = await self.handler(messages)
        except asyncio.CancelledError:
            keepalive.cancel()
            await self._release(messages)
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

    async def _settle(self, messages: list[SqsMessage], reported: Outcomes) -> None:
        """Delete what is done, delay what must wait; a failed call only means a redelivery."""
        outcomes = dict(reported)
        for m in messages:
            if m.message_id not in outcomes:  # fail closed: only a reported DONE deletes
                log.error("consumer.outcome_missing", message_id=m.message_id, effect="retried")
                outcomes[m.message_id] = Outcome.RETRY_LATER
        done = [m for m in messages if outcomes[m.message_id] is Outcome.DONE]
        for i in range(0, len(done), 10):
            chunk = done[i : i + 10]
            try:
                await self.sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[{"Id": str(n), "ReceiptHandle": m.receipt_handle} for n, m in enumerate(chunk)],
                )
            except Exception as exc:
                log.warning("consumer.delete_failed", error=repr(exc), messages=len(chunk), effect="redelivered")
        for m in messages:
            outcome = outcomes[m.message_id]
            metrics.MESSAGES.labels(self.service, outcome.value).inc()
            if outcome is Outcome.DONE:
                continue
            delay = 0 if outcome is Outcome.RETRY_NOW else backoff_seconds(m.receive_count)
            try:
                await self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=m.receipt_handle, VisibilityTimeout=delay
                )
            except Exception as exc:
                log.warning("consumer.delay_failed", error=repr(exc), effect="visible after the visibility timeout")
        self.handled += len(done)

    async def _release(self, messages: list[SqsMessage], timeout: float = 5.0) -> None:
        """Make unfinished messages visible again at once (best effort: else they time out)."""

        async def release_all() -> None:
            for first in range(0, len(messages), 10):
                chunk = messages[first : first + 10]
                await self.sqs.change_message_visibility_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(n), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
                        for n, m in enumerate(chunk)
                    ],
                )

        try:
            await asyncio.wait_for(release_all(), timeout)
            log.warning("consumer.released", messages=len(messages))
        except Exception as exc:
            log.warning("consumer.release_failed", error=repr(exc), messages=len(messages))

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
