"""A worker whose handler never returns (test code): `python -m tests.reliability.stuck_worker`.

It runs the real `run_worker` wiring on the `validated` queue with a 1 s shutdown timeout, and
blocks each message in a thread forever, as a hung dependency call would.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog

from playcount.core.config import Settings
from playcount.core.consumer import BatchHandler, SqsMessage, per_message
from playcount.core.resources import VALIDATED
from playcount.core.worker import run_worker

_never = threading.Event()
log = structlog.get_logger(__name__)


@asynccontextmanager
async def handler_factory(settings: Settings, session: Any) -> AsyncIterator[BatchHandler]:
    async def hang(message: SqsMessage) -> None:
        log.info("stuck_worker.holding", body=message.body)
        await asyncio.to_thread(_never.wait)

    yield per_message(hang)


if __name__ == "__main__":
    run_worker(Settings.load(), "stuck-worker", VALIDATED, handler_factory, shutdown_timeout=1.0)
