"""Serve the API with uvicorn on API_HOST:API_PORT; SIGTERM/SIGINT drain requests and exit 0."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

import uvicorn

from playcount.api.app import create_app
from playcount.api.config import ApiSettings
from playcount.core import logs


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn's own version re-raises the signal after a graceful shutdown, so the process
        # would die of SIGTERM (exit -15); a finished drain is a clean exit here
        def _exit(sig: int, frame: object) -> None:
            self.force_exit = self.should_exit and sig == signal.SIGINT
            self.should_exit = True

        previous = {sig: signal.signal(sig, _exit) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run() -> None:
    settings = ApiSettings.load()
    logs.configure(settings.log_level, settings.log_format, service="query-api")
    config = uvicorn.Config(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        # no log config of uvicorn's own: its loggers propagate to the root handler `logs` set up
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    server = _Server(config)
    asyncio.run(server.serve())


if __name__ == "__main__":
    run()
