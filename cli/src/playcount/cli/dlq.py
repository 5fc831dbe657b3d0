"""`playcount dlq list | peek <queue> | redrive <queue>`: inspect dead letters and move them back."""

from __future__ import annotations

from typing import Annotated

import typer

from playcount.cli.console import err, mover, out, progress, table
from playcount.core.config import load_settings
from playcount.ops import dlq

app = typer.Typer(help="Inspect dead-letter queues and redrive them after a fix.", no_args_is_help=True)
Queue = Annotated[str, typer.Argument(help="a stage (s3-events, validated, kpi-results) or a queue/DLQ name")]


def _unknown(exc: dlq.UnknownQueue) -> typer.Exit:
    err.print(f"playcount dlq: {exc}", style="red", markup=False, highlight=False)
    return typer.Exit(2)


@app.command("list")
def list_() -> None:
    """The DLQ depth of every stage."""
    rows = [(d.stage, d.dlq, d.depth) for d in dlq.depths(load_settings())]
    out.print(table("Dead-letter queues", ("stage", "DLQ", "messages"), rows, numeric_from=2))


@app.command()
def peek(queue: Queue, max: Annotated[int, typer.Option(min=1, max=100)] = 10) -> None:
    """Show messages in a DLQ without removing them."""
    try:
        letters = dlq.peek(load_settings(), queue, max)
    except dlq.UnknownQueue as exc:
        raise _unknown(exc) from exc
    for letter in letters:
        sent = letter.sent_at.isoformat() if letter.sent_at else "-"
        more = " ..." if letter.body_truncated else ""
        out.print(
            f"{letter.message_id}  received {letter.receive_count}x  sent {sent}\n  {letter.body[:300]}{more}",
            markup=False,
            highlight=False,
        )


@app.command()
def redrive(
    queue: Queue,
    max: Annotated[int | None, typer.Option(min=1, help="move at most this many (default: all)")] = None,
) -> None:
    """Move a DLQ's messages back to its queue."""
    settings = load_settings()
    try:
        spec = dlq.queue_spec(settings, queue)
        with progress() as bar:
            task = bar.add_task(f"redrive {spec.dlq_name}", total=None)
            moved = dlq.redrive(settings, queue, max, progress=mover(bar, task))
    except dlq.UnknownQueue as exc:
        raise _unknown(exc) from exc
    out.print(f"moved {moved} message(s) from {spec.dlq_name} back to {spec.name}", markup=False, highlight=False)
