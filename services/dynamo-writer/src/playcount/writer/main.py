"""Wiring: consume "KPIs ready" messages and apply each to DynamoDB."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from playcount.core import aws
from playcount.core.consumer import BatchHandler, SqsMessage, per_message
from playcount.core.messages import KpiResultReady, parse_model
from playcount.core.resources import RESULTS
from playcount.core.worker import run_worker
from playcount.writer.config import WriterOptions, WriterSettings, dynamodb_client
from playcount.writer.handler import Writer

SERVICE = "dynamo-writer"
MESSAGES_AT_ONCE = 4


def batch_handler(writer: Writer) -> BatchHandler:
    """Each message of a batch parsed, then applied in a thread; up to MESSAGES_AT_ONCE at once."""

    async def handle(message: SqsMessage) -> None:
        result = parse_model(KpiResultReady, message.body)
        await asyncio.to_thread(writer.handle, result)

    return per_message(handle, concurrency=MESSAGES_AT_ONCE)


@asynccontextmanager
async def handler_factory(settings: WriterSettings, session: Any) -> AsyncIterator[BatchHandler]:
    writer = Writer(
        settings=settings,
        s3=aws.client(settings, "s3"),
        ddb=dynamodb_client(settings),
        options=WriterOptions(apply_newest=settings.writer_apply_newest),
    )
    try:
        yield batch_handler(writer)
    finally:
        writer.close()


def run() -> None:
    run_worker(WriterSettings.load(), SERVICE, RESULTS, handler_factory)


if __name__ == "__main__":
    run()
