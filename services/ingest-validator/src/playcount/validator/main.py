"""Wiring: consume S3 event notifications and judge each object they name."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog

from playcount.core import aws, parquet, reconcile, snapshots
from playcount.core.consumer import BatchHandler, SqsMessage, per_message
from playcount.core.messages import parse_s3_event
from playcount.core.resources import S3_EVENTS, VALIDATED, resources
from playcount.core.worker import run_worker
from playcount.validator.config import ValidatorSettings
from playcount.validator.handler import Validator

SERVICE = "ingest-validator"
log = structlog.get_logger(__name__)


def build_validator(settings: ValidatorSettings) -> Validator:
    sqs = aws.client(settings, "sqs")
    validator = Validator(
        settings=settings,
        s3=aws.client(settings, "s3"),
        ddb=aws.client(settings, "dynamodb"),
        sqs=sqs,
        fs=parquet.filesystem(settings),
        validated_queue_url=aws.queue_url(sqs, resources(settings).queue(VALIDATED).name),
    )
    for kind in snapshots.KINDS:
        adopted = snapshots.adopt_legacy(settings, validator.s3, validator.fs, kind)
        if adopted is not None:
            log.info("catalog.adopted_legacy_snapshot", kind=kind, rows=adopted.rows)
        moved = snapshots.move_manifest(settings, validator.s3, kind)
        if moved is not None:
            log.info("catalog.manifest_moved", kind=kind, key=snapshots.manifest_key(settings, kind))
    return validator


async def reconcile_every(settings: ValidatorSettings, validator: Validator) -> None:
    """Sweep for unnotified input files every RECONCILE_SECONDS, one validator at a time (a lease)."""
    while True:
        await asyncio.sleep(settings.reconcile_seconds * random.uniform(0.9, 1.1))
        try:
            table = settings.dynamodb_table_name
            if await asyncio.to_thread(reconcile.take_lease, validator.ddb, table, settings.reconcile_seconds):
                await asyncio.to_thread(
                    reconcile.sweep,
                    settings,
                    validator.s3,
                    validator.ddb,
                    validator.sqs,
                    grace_seconds=settings.reconcile_grace_seconds,
                )
        except Exception as exc:  # a sweep is a safety net: a failed one waits for the next
            log.warning("reconcile.failed", error=repr(exc))


@asynccontextmanager
async def handler_factory(settings: ValidatorSettings, session: Any) -> AsyncIterator[BatchHandler]:
    validator = await asyncio.to_thread(build_validator, settings)

    async def handle(message: SqsMessage) -> None:
        for ref in parse_s3_event(message.body):
            await asyncio.to_thread(validator.handle, ref)

    sweeping = asyncio.create_task(reconcile_every(settings, validator)) if settings.reconcile_seconds > 0 else None
    try:
        yield per_message(handle, concurrency=2)
    finally:
        if sweeping is not None:
            sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeping


def run() -> None:
    run_worker(ValidatorSettings.load(), SERVICE, S3_EVENTS, handler_factory)


if __name__ == "__main__":
    run()
