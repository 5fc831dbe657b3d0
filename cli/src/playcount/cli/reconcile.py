"""`playcount reconcile`: send input files no notification brought in through the pipeline."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from playcount.cli.console import out
from playcount.core import aws, reconcile
from playcount.core.config import load_settings


def _since(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not an ISO date or time (e.g. 2026-12-01T06:00Z)") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def reconcile_command(
    since: Annotated[
        dt.datetime | None, typer.Option(parser=_since, help="only files uploaded at or after this time (ISO)")
    ] = None,
    grace: Annotated[
        float, typer.Option(min=0, envvar="RECONCILE_GRACE_SECONDS", help="seconds a file must be old")
    ] = reconcile.DEFAULT_GRACE_SECONDS,
) -> None:
    """Send input files that no S3 notification brought in through the pipeline.

    Lists the streams and metadata upload prefixes, and sends an S3 event to the s3-events queue
    for every file older than the grace period that the ledger has never seen (a lost or purged
    notification). Safe to repeat: the validator counts a file once. Prints the counts as JSON.
    """
    settings = load_settings()
    result = reconcile.sweep(
        settings,
        aws.client(settings, "s3"),
        aws.client(settings, "dynamodb"),
        aws.client(settings, "sqs"),
        grace_seconds=grace,
        since=since,
    )
    out.print_json(result.model_dump_json())
