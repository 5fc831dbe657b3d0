"""Terminal output of the command line: progress bars and tables on stderr, results on stdout.

Results (JSON, tables asked for) go to stdout so they can be piped; progress goes to stderr and
draws only on a terminal (rich leaves a log line per finished bar otherwise).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def progress(transient: bool = False) -> Progress:
    """A progress display on stderr: spinner, description, bar, count and elapsed time."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=transient,
    )


def mover(bar: Progress, task: TaskID) -> Callable[[int, int], None]:
    """A `progress(done, total)` callback for the operations that moves `task` of `bar`."""
    return lambda done, total: bar.update(task, completed=done, total=total)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[object]], numeric_from: int = 1) -> Table:
    """A table whose columns from `numeric_from` on are right-aligned numbers."""
    t = Table(title=title, title_justify="left")
    for i, name in enumerate(columns):
        t.add_column(name, justify="right" if i >= numeric_from else "left")
    for row in rows:
        t.add_row(*(str(v) for v in row))
    return t
