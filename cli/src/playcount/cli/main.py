"""The operator's `playcount` command: bootstrap, status, dlq, replay-quarantine, reconcile.

Installed packages can add commands through the `playcount.commands` entry point group: the
developer's embedded stack (`playcount-devstack`) adds `up`, `generate` and `sql` that way, so
the production images, which carry only this package, have neither moto nor numpy.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import typer

from playcount.cli import dlq, reconcile, replay, status
from playcount.cli.console import out
from playcount.core import logs
from playcount.core.config import load_settings
from playcount.ops.bootstrap import bootstrap

app = typer.Typer(
    name="playcount",
    help="Playcount: music-streaming KPIs from S3 drops. Settings come from the environment (see README).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.command("bootstrap")
def bootstrap_command() -> None:
    """Create every AWS resource (idempotent)."""
    res = bootstrap(load_settings())
    out.print(f"bootstrapped bucket={res.bucket} table={res.table} queues={[q.name for q in res.queues]}", markup=False)


app.command("status")(status.status)
app.command("replay-quarantine")(replay.replay)
app.command("reconcile")(reconcile.reconcile_command)
app.add_typer(dlq.app, name="dlq")


def _plugins() -> None:
    for ep in entry_points(group="playcount.commands"):
        ep.load()(app)


_plugins()


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 on success)."""
    logs.configure()
    try:
        app(args=argv, prog_name="playcount", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int | None) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
