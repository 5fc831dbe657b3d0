"""`playcount reconcile`: send input files no notification brought in through the pipeline."""

from __future__ import annotations

import argparse
import datetime as dt

from playcount.core import aws, reconcile
from playcount.core.config import load_settings


def _since(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO date or time (e.g. 2026-12-01T06:00Z)") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _reconcile(args: argparse.Namespace) -> int:
    settings = load_settings()
    grace = settings.reconcile_grace_seconds if args.grace is None else args.grace
    result = reconcile.sweep(
        settings,
        aws.client(settings, "s3"),
        aws.client(settings, "dynamodb"),
        aws.client(settings, "sqs"),
        grace_seconds=grace,
        since=args.since,
    )
    print(result.model_dump_json(indent=1))
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "reconcile",
        help="send input files that no S3 notification brought in through the pipeline",
        description=(
            "Lists the streams and metadata upload prefixes, and sends an S3 event to the s3-events queue "
            "for every file older than the grace period that the ledger has never seen (a lost or purged "
            "notification). Safe to repeat: the validator counts a file once. Prints the counts as JSON."
        ),
    )
    p.add_argument("--since", type=_since, default=None, help="only files uploaded at or after this time (ISO)")
    p.add_argument(
        "--grace", type=float, default=None, help="seconds a file must be old (default RECONCILE_GRACE_SECONDS)"
    )
    p.set_defaults(func=_reconcile)
    return p
