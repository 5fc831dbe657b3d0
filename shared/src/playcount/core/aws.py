"""AWS clients pointed at the configured endpoint (moto, LocalStack or real AWS)."""

from __future__ import annotations

from typing import Any

import aioboto3
import boto3
from botocore.config import Config

from playcount.core.config import Settings

_RETRIES = Config(retries={"max_attempts": 8, "mode": "adaptive"}, max_pool_connections=64)


def client(settings: Settings, service: str) -> Any:
    """A synchronous boto3 client (thread-safe) for `service`."""
    return boto3.client(
        service,
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=_RETRIES,
    )


def async_session() -> aioboto3.Session:
    return aioboto3.Session()


def async_client(session: aioboto3.Session, settings: Settings, service: str) -> Any:
    """An aioboto3 client context manager for `service`."""
    return session.client(
        service,
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=_RETRIES,
    )


def queue_url(sqs: Any, name: str) -> str:
    return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
