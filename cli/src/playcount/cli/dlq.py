"""`playcount dlq list | peek <queue> | redrive <queue>`: inspect dead letters and move them back."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from playcount.core import dlq
from playcount.core.config import load_settings


def _list(args: argparse.Namespace) -> int:
    settings = load_settings()
    for d in dlq.depths(settings):
        print(f"{d.stage:<12} {d.dlq:<48} {d.depth:>6}")
    return 0


def _peek(args: argparse.Namespace) -> int:
    settings = load_settings()
    for letter in dlq.peek(settings, args.queue, args.max):
        sent = letter.sent_at.isoformat() if letter.sent_at else "-"
        more = " ..." if letter.body_truncated else ""
        print(f"{letter.message_id}  received {letter.receive_count}x  sent {sent}\n  {letter.body[:300]}{more}")
    return 0


def _redrive(args: argparse.Namespace) -> int:
    settings = load_settings()
    moved = dlq.redrive(settings, args.queue, args.max)
    spec = dlq.queue_spec(settings, args.queue)
    print(f"moved {moved} message(s) from {spec.dlq_name} back to {spec.name}")
    return 0


def _friendly(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except dlq.UnknownQueue as exc:
            print(f"playcount dlq: {exc}", file=sys.stderr)
            return 2

    return run


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `dlq` and its sub-commands on the top-level parser."""
    p = sub.add_parser("dlq", help="inspect dead-letter queues and redrive them after a fix")
    cmds = p.add_subparsers(dest="dlq_command", required=True)
    ls = cmds.add_parser("list", help="the DLQ depth of every stage")
    ls.set_defaults(func=_friendly(_list))
    queue_help = "a stage (s3-events, validated, kpi-results) or a queue/DLQ name"
    pk = cmds.add_parser("peek", help="show messages in a DLQ without removing them")
    pk.add_argument("queue", help=queue_help)
    pk.add_argument("--max", type=int, default=10)
    pk.set_defaults(func=_friendly(_peek))
    rd = cmds.add_parser("redrive", help="move a DLQ's messages back to its queue")
    rd.add_argument("queue", help=queue_help)
    rd.add_argument("--max", type=int, default=None, help="move at most this many (default: all)")
    rd.set_defaults(func=_friendly(_redrive))
