"""Wiring: a warm Spark session, then micro-batches of "file validated" messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog

from playcount.core import aws, parquet
from playcount.core.consumer import BatchHandler, Outcomes, SqsMessage
from playcount.core.resources import RESULTS, S3_EVENTS, VALIDATED, resources
from playcount.core.worker import run_worker
from playcount.runner.config import RunnerSettings
from playcount.runner.handler import Runner
from playcount.runner.session import spark_session
from playcount.runner.warmup import warm_up

SERVICE = "kpi-spark-runner"
log = structlog.get_logger(__name__)


def build_runner(settings: RunnerSettings) -> Runner:
    sqs = aws.client(settings, "sqs")
    spark = spark_session(settings)
    spark.range(1).count()  # start the JVM's executors and planner before the first batch
    if settings.lake_read_mode == "stage":  # synthetic local files: the executors must share this disk
        try:
            warm_up(spark, Path(settings.work_dir) / "runner", settings.runner_warmup_runs)
        except Exception as exc:  # a warm-up is an optimization; a failing one must not stop the service
            log.warning("runner.warmup_failed", error=repr(exc))
    runner = Runner(
        settings=settings,
        spark=spark,
        s3=aws.client(settings, "s3"),
        sqs=sqs,
        ddb=aws.client(settings, "dynamodb"),
        fs=parquet.filesystem(settings),
        results_queue_url=aws.queue_url(sqs, resources(settings).queue(RESULTS).name),
        mirror_dates=settings.runner_mirror_dates,
    )
    runner.catalog.current()  # load and cache the metadata before the first batch
    return runner


@asynccontextmanager
async def handler_factory(settings: RunnerSettings, session: Any) -> AsyncIterator[BatchHandler]:
    runner = await asyncio.to_thread(build_runner, settings)

    async def handle(messages: list[SqsMessage]) -> Outcomes:
        return await asyncio.to_thread(runner.handle_batch, messages)

    try:
        yield handle
    finally:
        await asyncio.to_thread(runner.close)
        await asyncio.to_thread(runner.spark.stop)


def run() -> None:
    settings = RunnerSettings.load()
    run_worker(
        settings,
        SERVICE,
        VALIDATED,
        handler_factory,
        batch_window=settings.runner_batch_window_seconds,
        max_batch=settings.runner_max_batch,
        hold_while_backlog=S3_EVENTS,
        max_hold=settings.runner_max_hold_seconds,
        shutdown_timeout=120.0,
    )


if __name__ == "__main__":
    run()
