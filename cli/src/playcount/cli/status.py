"""`playcount status`: the pipeline's queues and counters, as tables."""

from __future__ import annotations

from playcount.cli.console import out, table
from playcount.core.config import load_settings
from playcount.ops.pipeline import counters, queue_depths


def status() -> None:
    """The depth of every queue and its DLQ (upstream first), and the pipeline's counters."""
    settings = load_settings()
    depths = queue_depths(settings)
    out.print(
        table(
            "Queues",
            ("queue", "visible", "in flight", "delayed", "dead letters"),
            [(q.name, q.visible, q.in_flight, q.delayed, q.dlq_depth) for q in depths],
        )
    )
    out.print(table("Counters", ("counter", "value"), sorted(counters(settings).items())))
    idle = all(q.empty for q in depths)
    out.print("idle: no work in any queue" if idle else "busy: work in progress", highlight=False)
