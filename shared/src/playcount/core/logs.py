"""Log set-up for processes: structlog's events and the standard library's records, one renderer.

Libraries never configure handlers; only a process's entry point calls `configure`. After it,
every line the process writes to stderr goes through the same processors and renderer: with
`fmt="json"` one JSON object per line with `event`, `level`, `logger`, `timestamp` and the
`service`, whether structlog wrote it or the standard library did (botocore, uvicorn, py4j,
asyncio, moto's werkzeug, Python warnings); with `"console"` structlog's console layout.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

# the standard library's records from warnings up (botocore's credential notes and py4j's
# connection chatter stay out; uvicorn's loggers get their own level from the API's main)
LIBRARY_LEVEL = logging.WARNING
_HANDLER_NAME = "playcount.core.logs"


class _NamedWriter(structlog.WriteLogger):
    """structlog's writer with the name it was asked for, for `add_logger_name`."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


class _RenderedHandler(logging.Handler):
    """The root handler: a record rendered by structlog's formatter, written as structlog writes
    its own lines (one write each, under the same per-file lock, so lines never interleave)."""

    def __init__(self, file: TextIO) -> None:
        super().__init__()
        self._writer = structlog.WriteLogger(file)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._writer.msg(self.format(record))
        except Exception:
            self.handleError(record)


def _service_adder(service: str | None) -> Processor:
    def add_service(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
        # a processor, not a context variable: threads that did not copy the context (boto3's
        # transfer threads, py4j's) log under the service too
        if service:
            event_dict.setdefault("service", service)
        return event_dict

    return add_service


def configure(
    level: str = "INFO", fmt: str = "console", service: str | None = None, file: TextIO | None = None
) -> None:
    """Send structlog's events and the root logger's records through one renderer to `file`
    (stderr). Calling it again replaces the previous set-up."""
    out = file if file is not None else sys.stderr
    threshold = logging.getLevelNamesMapping()[level.upper()]
    renderer: Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    # what every line gets, structlog's or the standard library's (`foreign_pre_chain`)
    common: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        _service_adder(service),
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]

    def writer(*args: Any) -> _NamedWriter:
        return _NamedWriter(out, str(args[0]) if args else "")

    structlog.configure(
        processors=[*common, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=writer,
        cache_logger_on_first_use=True,
    )
    handler = _RenderedHandler(out)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=common,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for previous in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(max(LIBRARY_LEVEL, threshold))
    logging.captureWarnings(True)
