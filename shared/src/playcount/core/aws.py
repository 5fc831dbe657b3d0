"""AWS clients pointed at the configured endpoint (moto, LocalStack or real AWS).

Clients retry with botocore's capped exponential backoff (8 attempts); every attempt that
got no answer at all (endpoint unreachable, connection reset, timeout) is logged as
`aws.unreachable`, so an outage is visible in the logs while the retries absorb it. Such an
attempt also calls every `on_unreachable` listener: a worker whose handler is deep in retries
reports not-ready at once, not only on its next queue poll.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aioboto3
import boto3
import structlog
from botocore.config import Config
from botocore.exceptions import ClientError

from playcount.core.config import Settings

log = structlog.get_logger(__name__)

_RETRIES = Config(retries={"max_attempts": 8, "mode": "adaptive"}, max_pool_connections=64)


_listeners: list[Callable[[], None]] = []


def on_unreachable(listener: Callable[[], None]) -> Callable[[], None]:
    """Call `listener` (from any thread) on every attempt of this process that got no answer.

    Returns a function that removes the listener again.
    """
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def _log_unreachable(attempts: int, caught_exception: Exception | None = None, **kwargs: Any) -> None:
    """botocore `needs-retry` hook: log attempts that failed without any response."""
    if caught_exception is not None:
        for listener in list(_listeners):
            listener()
        operation = kwargs.get("operation")
        log.warning(
            "aws.unreachable",
            operation=getattr(operation, "name", None),
            attempt=attempts,
            error=repr(caught_exception),
        )


def client(settings: Settings, service: str, *, retry_mode: str | None = None) -> Any:
    """A synchronous boto3 client (thread-safe) for `service` (`retry_mode` overrides "adaptive")."""
    config = _RETRIES if retry_mode is None else _RETRIES.merge(Config(retries={"max_attempts": 8, "mode": retry_mode}))
    c = boto3.client(
        service,
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=config,
    )
    c.meta.events.register("needs-retry", _log_unreachable)
    return c


MISSING_CODES = ("NoSuchKey", "404", "NotFound")


def is_missing(exc: ClientError) -> bool:
    """Whether an S3 error says the object (or key) does not exist."""
    return exc.response.get("Error", {}).get("Code") in MISSING_CODES


def async_session() -> aioboto3.Session:
    """An aioboto3 session whose clients log unreachable attempts like the sync ones."""
    session = aioboto3.Session()
    session.events.register("needs-retry", _log_unreachable)
    return session


def async_client(session: aioboto3.Session, settings: Settings, service: str, *, attempts: int | None = None) -> Any:
    """An aioboto3 client context manager for `service` (`attempts` overrides the retry budget)."""
    config = (
        _RETRIES if attempts is None else _RETRIES.merge(Config(retries={"max_attempts": attempts, "mode": "adaptive"}))
    )
    return session.client(
        service,
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=config,
    )


def queue_url(sqs: Any, name: str) -> str:
    return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
