"""Is the pipeline idle, and how deep are its queues? (used by the API and `playcount up --demo`)

Queues are read upstream first. A message only ever moves downstream, and each service sends
the next message before deleting its own, so when every queue (visible, in flight and
delayed) reads empty in that order, no work was in progress at the last read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel

from playcount.core import aws, ledger
from playcount.core.config import Settings
from playcount.core.resources import resources

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_sqs import SQSClient
    from types_boto3_sqs.literals import QueueAttributeNameType

_ATTRS: list[QueueAttributeNameType] = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]


class QueueDepth(BaseModel):
    name: str
    visible: int
    in_flight: int
    delayed: int
    dlq: str
    dlq_depth: int

    @property
    def empty(self) -> bool:
        return self.visible + self.in_flight + self.delayed == 0


def _depth(sqs: SQSClient, name: str) -> tuple[int, int, int]:
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=_ATTRS)["Attributes"]
    return tuple(int(attrs.get(a, 0)) for a in _ATTRS)  # type: ignore[return-value]


def queue_depths(settings: Settings, sqs: SQSClient | None = None) -> list[QueueDepth]:
    sqs = sqs or aws.client(settings, "sqs")
    out = []
    for q in resources(settings).queues:  # upstream first
        visible, in_flight, delayed = _depth(sqs, q.name)
        dlq = _depth(sqs, q.dlq_name)
        out.append(
            QueueDepth(
                name=q.name, visible=visible, in_flight=in_flight, delayed=delayed, dlq=q.dlq_name, dlq_depth=sum(dlq)
            )
        )
    return out


def is_idle(settings: Settings, sqs: SQSClient | None = None) -> bool:
    return all(q.empty for q in queue_depths(settings, sqs))


def wait_until_idle(
    settings: Settings,
    timeout: float = 300.0,
    settle: float = 0.3,
    on_poll: Callable[[list[QueueDepth]], None] | None = None,
) -> bool:
    """Poll until idle twice in a row `settle` seconds apart; False on timeout.

    `on_poll` sees the queues at each poll (a progress display).
    """
    sqs = aws.client(settings, "sqs")
    deadline = time.monotonic() + timeout

    def idle() -> bool:
        depths = queue_depths(settings, sqs)
        if on_poll is not None:
            on_poll(depths)
        return all(q.empty for q in depths)

    while time.monotonic() < deadline:
        if idle():
            time.sleep(settle)
            if idle():
                return True
        time.sleep(0.1)
    return False


def counters(settings: Settings, ddb: DynamoDBClient | None = None) -> dict[str, int]:
    return ledger.read_counters(ddb or aws.client(settings, "dynamodb"), settings.dynamodb_table_name)
