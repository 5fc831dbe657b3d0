"""`logs.configure`: structlog's events and the standard library's records come out alike."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
import structlog

from playcount.core import logs

pytestmark = pytest.mark.fast  # pure: no emulator, no Spark (make check)


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """A captured stream to configure logs into; the process's log set-up is restored after."""
    root = logging.getLogger()
    handlers, level, config = list(root.handlers), root.level, structlog.get_config()
    yield io.StringIO()
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)
    structlog.configure(**config)


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_json_lines_from_structlog_and_the_standard_library_carry_the_same_keys(stream):
    # GIVEN a process configured as a service is in its container
    logs.configure("INFO", "json", service="dynamo-writer", file=stream)

    # WHEN our code logs an event and a library logs a warning
    structlog.get_logger("playcount.writer.apply").info("result.applied", date="2025-06-24", version=3)
    logging.getLogger("botocore.x").warning("retrying %s after %d s", "PutItem", 2)

    # THEN each is one JSON object with the event, its level, logger, time and the service
    ours, theirs = (json.loads(line) for line in _lines(stream))
    assert ours["event"] == "result.applied" and (ours["date"], ours["version"]) == ("2025-06-24", 3)
    assert theirs["event"] == "retrying PutItem after 2 s"
    for event, level, logger in ((ours, "info", "playcount.writer.apply"), (theirs, "warning", "botocore.x")):
        assert (event["level"], event["logger"], event["service"]) == (level, logger, "dynamo-writer")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", event["timestamp"]), event


def test_a_library_exception_is_one_json_line_with_its_traceback(stream):
    logs.configure("INFO", "json", service="query-api", file=stream)
    try:
        raise ConnectionError("endpoint gone")
    except ConnectionError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")

    (line,) = _lines(stream)
    event = json.loads(line)
    assert (event["event"], event["level"], event["logger"]) == (
        "Exception in ASGI application",
        "error",
        "uvicorn.error",
    )
    assert "ConnectionError: endpoint gone" in event["exception"]


def test_library_records_below_warning_stay_out_and_ours_follow_the_configured_level(stream):
    logs.configure("INFO", "json", file=stream)
    logging.getLogger("botocore.credentials").info("Found credentials in environment variables.")
    logging.getLogger("py4j.clientserver").debug("Command to send")
    structlog.get_logger("playcount.core.consumer").debug("consumer.polled")
    structlog.get_logger("playcount.core.consumer").info("consumer.start")

    assert [json.loads(line)["event"] for line in _lines(stream)] == ["consumer.start"]


def test_console_lines_look_the_same_whoever_wrote_them(stream):
    logs.configure("INFO", "console", service="ingest-validator", file=stream)
    structlog.get_logger("playcount.validator.handler").warning("object.rejected", reason="bad_header")
    logging.getLogger("asyncio").warning("Executing <Task> took 0.2 seconds")

    def layout(event: str, logger: str) -> str:
        return (
            rf"[\d-]+T[\d:.]+Z \[warning\s*\] {re.escape(event)}\s+\[{re.escape(logger)}\] .*service=ingest-validator"
        )

    ours, theirs = _lines(stream)
    assert re.fullmatch(layout("object.rejected", "playcount.validator.handler"), ours), ours
    assert re.fullmatch(layout("Executing <Task> took 0.2 seconds", "asyncio"), theirs), theirs


def test_configuring_again_replaces_the_set_up_instead_of_doubling_lines(stream):
    logs.configure("INFO", "console", file=io.StringIO())
    logs.configure("INFO", "json", service="kpi-spark-runner", file=stream)
    logging.getLogger("pyspark").warning("once")
    structlog.get_logger("playcount.runner.handler").info("twice?")

    assert [(e["event"], e["service"]) for e in map(json.loads, _lines(stream))] == [
        ("once", "kpi-spark-runner"),
        ("twice?", "kpi-spark-runner"),
    ]
