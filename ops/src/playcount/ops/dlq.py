"""Dead-letter queues: how deep they are, what is in them, and moving messages back (redrive).

Every stage queue (`resources.STAGES`) has a DLQ that SQS fills after `SQS_MAX_RECEIVE_COUNT`
receives. Once the cause is fixed, `redrive` moves the messages back to the stage's queue:
each message is sent to the source queue first and deleted from the DLQ only after, so a
crash mid-way can duplicate a message but never lose one (every handler is idempotent).

A queue is named by its stage (`s3-events`), its queue name or its DLQ name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog
from pydantic import BaseModel

from playcount.core import aws
from playcount.core.config import Settings
from playcount.core.errors import PlaycountError
from playcount.core.resources import QueueSpec, resources

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient
    from types_boto3_sqs.type_defs import (
        DeleteMessageBatchRequestEntryTypeDef,
        MessageTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

log = structlog.get_logger(__name__)

# how long a message taken from the DLQ stays hidden while it is copied back (or peeked at)
_HOLD_SECONDS = 30
# a short long-poll: real SQS's short poll samples a subset of servers and can answer empty
_POLL_SECONDS = 1
_BODY_PREVIEW = 2000


class UnknownQueue(PlaycountError, ValueError):
    """A name that is neither a stage nor one of Playcount's queues or DLQs."""


class DeadLetter(BaseModel):
    """One message waiting in a DLQ (its body cut to a preview)."""

    message_id: str
    body: str
    body_truncated: bool
    receive_count: int
    sent_at: dt.datetime | None


class DlqDepth(BaseModel):
    stage: str
    queue: str
    dlq: str
    depth: int


def queue_spec(settings: Settings, name: str) -> QueueSpec:
    """The queue a stage, queue name or DLQ name refers to; `UnknownQueue` otherwise."""
    for spec in resources(settings).queues:
        if name in (spec.stage, spec.name, spec.dlq_name):
            return spec
    known = ", ".join(q.stage for q in resources(settings).queues)
    raise UnknownQueue(f"no queue {name!r}: use one of {known} (or a full queue name)")


def _url(sqs: SQSClient, name: str) -> str:
    return aws.queue_url(sqs, name)


def depth(settings: Settings, name: str, sqs: SQSClient | None = None) -> int:
    """Messages in the DLQ of `name` (visible, in flight and delayed)."""
    sqs = sqs or aws.client(settings, "sqs")
    attrs = sqs.get_queue_attributes(
        QueueUrl=_url(sqs, queue_spec(settings, name).dlq_name),
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


def depths(settings: Settings, sqs: SQSClient | None = None) -> list[DlqDepth]:
    """The DLQ depth of every stage, upstream first."""
    sqs = sqs or aws.client(settings, "sqs")
    return [
        DlqDepth(stage=q.stage, queue=q.name, dlq=q.dlq_name, depth=depth(settings, q.stage, sqs))
        for q in resources(settings).queues
    ]


def _letter(raw: MessageTypeDef) -> DeadLetter:
    attrs = raw.get("Attributes", {})
    sent = attrs.get("SentTimestamp")
    body = raw["Body"]
    return DeadLetter(
        message_id=raw["MessageId"],
        body=body[:_BODY_PREVIEW],
        body_truncated=len(body) > _BODY_PREVIEW,
        receive_count=int(attrs.get("ApproximateReceiveCount", "1")),
        sent_at=dt.datetime.fromtimestamp(int(sent) / 1000, dt.UTC) if sent else None,
    )


def peek(settings: Settings, name: str, max_messages: int = 10, sqs: SQSClient | None = None) -> list[DeadLetter]:
    """Up to `max_messages` messages of the DLQ of `name`, left in place (visible again at once)."""
    sqs = sqs or aws.client(settings, "sqs")
    url = _url(sqs, queue_spec(settings, name).dlq_name)
    seen: dict[str, MessageTypeDef] = {}
    while len(seen) < max_messages:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, max_messages - len(seen)),
            WaitTimeSeconds=_POLL_SECONDS,
            VisibilityTimeout=_HOLD_SECONDS,
            AttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        ).get("Messages", [])
        if not batch:
            break
        for m in batch:
            seen.setdefault(m["MessageId"], m)
    for m in seen.values():
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    return [_letter(m) for m in seen.values()]


def redrive(
    settings: Settings,
    stage: str,
    max_messages: int | None = None,
    sqs: SQSClient | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Move up to `max_messages` (all there now, if None) from the DLQ of `stage` back to its queue.

    `progress(moved, limit)` is called after each batch (a progress display).

    Returns how many were moved. At-least-once: a message is deleted from the DLQ only after
    the source queue accepted its copy. Only what is in the DLQ when the call starts is moved:
    a message that is still poison fails again at once and returns to the DLQ, and must not
    be moved round and round (the call stops when it meets a copy it sent itself).
    """
    sqs = sqs or aws.client(settings, "sqs")
    spec = queue_spec(settings, stage)
    source, dlq = _url(sqs, spec.name), _url(sqs, spec.dlq_name)
    there_now = depth(settings, spec.stage, sqs)
    limit = there_now if max_messages is None else min(max_messages, there_now)
    sent_ids: set[str] = set()
    moved = 0
    while moved < limit:
        batch = sqs.receive_message(
            QueueUrl=dlq,
            MaxNumberOfMessages=min(10, limit - moved),
            WaitTimeSeconds=_POLL_SECONDS,
            VisibilityTimeout=_HOLD_SECONDS,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        returning = [m for m in batch if m["MessageId"] in sent_ids]
        for m in returning:  # back from a round trip: leave it where it is, visible
            sqs.change_message_visibility(QueueUrl=dlq, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
        batch = [m for m in batch if m["MessageId"] not in sent_ids]
        if not batch:
            break
        done, new_ids = _move(sqs, source, dlq, batch, spec.name)
        sent_ids |= new_ids
        moved += done
        if progress is not None:
            progress(moved, limit)
        if done < len(batch):
            break  # the source refused some: stop rather than spin; they stay in the DLQ
    log.info("dlq.redriven", queue=spec.name, dlq=spec.dlq_name, moved=moved)
    return moved


def _move(sqs: SQSClient, source: str, dlq: str, batch: list[MessageTypeDef], name: str) -> tuple[int, set[str]]:
    """Send `batch` to the source queue, then delete what it accepted from the DLQ."""
    entries: list[SendMessageBatchRequestEntryTypeDef] = []
    for n, m in enumerate(batch):
        entry: SendMessageBatchRequestEntryTypeDef = {"Id": str(n), "MessageBody": m["Body"]}
        if m.get("MessageAttributes"):
            entry["MessageAttributes"] = m["MessageAttributes"]
        entries.append(entry)
    sent = sqs.send_message_batch(QueueUrl=source, Entries=entries)
    ok = {e["Id"]: e["MessageId"] for e in sent.get("Successful", [])}
    for failure in sent.get("Failed", []):
        log.warning("dlq.redrive_send_failed", queue=name, error=failure.get("Message"))
    done: list[DeleteMessageBatchRequestEntryTypeDef] = [
        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch) if str(n) in ok
    ]
    if done:
        sqs.delete_message_batch(QueueUrl=dlq, Entries=done)
    return len(done), set(ok.values())
