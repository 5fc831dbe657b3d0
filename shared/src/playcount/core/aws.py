"""AWS clients pointed at the configured endpoint (moto, LocalStack or real AWS).

Clients retry each request in botocore's "adaptive" mode: up to 8 retries (9 attempts in
all; botocore's `max_attempts` counts retries) with capped exponential backoff and jitter, plus
a client-side rate limit once throttled. `client(retry_mode=...)` picks another mode with the
same 8 retries (the writer's DynamoDB client: "standard", see `writer.config.dynamodb_client`);
`async_client(attempts=...)` another number of retries, still adaptive (the workers' queue
loop: 2). Our own loops that try again use `playcount.core.retrying`; what an S3 error code
means is in `playcount.core.s3`.

Every attempt that got no answer at all (endpoint unreachable, connection reset, timeout) is
logged as `aws.unreachable`, so an outage is visible in the logs while the retries absorb it.
Such an attempt also calls every `on_unreachable` listener: a worker whose handler is deep in
retries reports not-ready at once, not only on its next queue poll.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypedDict, overload

import aioboto3
import boto3
import structlog
from aiobotocore.config import AioConfig
from botocore.config import Config

from playcount.core.config import Settings

if TYPE_CHECKING:  # the stubs are dev-only (the root's dev group): images never import them
    from aiobotocore.session import ClientCreatorContext
    from types_aiobotocore_dynamodb import DynamoDBClient as AsyncDynamoDBClient
    from types_aiobotocore_s3 import S3Client as AsyncS3Client
    from types_aiobotocore_sqs import SQSClient as AsyncSQSClient
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_s3 import S3Client
    from types_boto3_sqs import SQSClient

Service = Literal["s3", "sqs", "dynamodb"]
RetryMode = Literal["legacy", "standard", "adaptive"]

log = structlog.get_logger(__name__)

_RETRIES = Config(retries={"max_attempts": 8, "mode": "adaptive"}, max_pool_connections=64)
# the same for aioboto3 clients (aiobotocore turns a plain Config into an AioConfig anyway)
_ASYNC_RETRIES = AioConfig(retries={"max_attempts": 8, "mode": "adaptive"}, max_pool_connections=64)


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


@overload
def client(settings: Settings, service: Literal["s3"], *, retry_mode: RetryMode | None = None) -> S3Client: ...
@overload
def client(settings: Settings, service: Literal["sqs"], *, retry_mode: RetryMode | None = None) -> SQSClient: ...
@overload
def client(
    settings: Settings, service: Literal["dynamodb"], *, retry_mode: RetryMode | None = None
) -> DynamoDBClient: ...
def client(
    settings: Settings, service: Service, *, retry_mode: RetryMode | None = None
) -> S3Client | SQSClient | DynamoDBClient:
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


def async_session() -> aioboto3.Session:
    """An aioboto3 session whose clients log unreachable attempts like the sync ones."""
    session = aioboto3.Session()
    session.events.register("needs-retry", _log_unreachable)
    return session


@overload
def async_client(
    session: aioboto3.Session, settings: Settings, service: Literal["s3"], *, attempts: int | None = None
) -> ClientCreatorContext[AsyncS3Client]: ...
@overload
def async_client(
    session: aioboto3.Session, settings: Settings, service: Literal["sqs"], *, attempts: int | None = None
) -> ClientCreatorContext[AsyncSQSClient]: ...
@overload
def async_client(
    session: aioboto3.Session, settings: Settings, service: Literal["dynamodb"], *, attempts: int | None = None
) -> ClientCreatorContext[AsyncDynamoDBClient]: ...
def async_client(
    session: aioboto3.Session, settings: Settings, service: Service, *, attempts: int | None = None
) -> (
    ClientCreatorContext[AsyncS3Client]
    | ClientCreatorContext[AsyncSQSClient]
    | ClientCreatorContext[AsyncDynamoDBClient]
):
    """An aioboto3 client context manager for `service` (`attempts` overrides the retry budget)."""
    config = (
        _ASYNC_RETRIES
        if attempts is None
        else _ASYNC_RETRIES.merge(AioConfig(retries={"max_attempts": attempts, "mode": "adaptive"}))
    )
    return session.client(
        service,
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=config,
    )


def queue_url(sqs: SQSClient, name: str) -> str:
    return sqs.get_queue_url(QueueName=name)["QueueUrl"]


class IfMatch(TypedDict, total=False):
    """S3's conditional-request parameters of a GetObject or PutObject, spread into the call
    (`**condition`) only when there is a condition: botocore refuses an explicit None."""

    IfMatch: str
    IfNoneMatch: str


class CopyIfMatch(TypedDict, total=False):
    """A CopyObject's condition on its source, spread into the call like `IfMatch`."""

    CopySourceIfMatch: str
