"""The developer's commands, added to `playcount` when this package is installed: up, generate, sql.

Registered through the `playcount.commands` entry point (see `playcount.cli.main`).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from playcount.cli.console import out, progress
from playcount.devstack import generate as gen
from playcount.devstack.sql import sql

app = typer.Typer()
app.command("sql")(sql)


@app.command()
def up(
    demo: Annotated[bool, typer.Option("--demo", help="upload a generated data set and show the KPIs")] = False,
    seed: int = 7,
    host: str = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="EMULATOR_PORT", help="emulator port (LocalStack's default)")] = 4566,
    no_emulator: Annotated[bool, typer.Option("--no-emulator", help="use AWS_ENDPOINT_URL / real AWS instead")] = False,
    exit_after_demo: Annotated[bool, typer.Option("--exit-after-demo", help="stop once the demo is shown")] = False,
    demo_days: Annotated[int, typer.Option(min=1)] = 3,
    demo_files_per_day: Annotated[int, typer.Option(min=1)] = 3,
    demo_rows: Annotated[int, typer.Option(min=1, help="rows per demo stream file")] = 5000,
    log_dir: Annotated[Path | None, typer.Option(help="write service logs here instead of the terminal")] = None,
) -> None:
    """Run the embedded stack: emulator, bootstrap, the four services."""
    from playcount.devstack.up import Demo
    from playcount.devstack.up import up as run_up

    external = os.environ.get("AWS_ENDPOINT_URL") if no_emulator else None
    plan = Demo(seed, demo_days, demo_files_per_day, demo_rows, exit_after_demo) if demo else None
    raise typer.Exit(run_up(host, port, external=external, demo=plan, log_dir=log_dir))


@app.command()
def generate(
    out_dir: Annotated[Path, typer.Option("--out", help="directory to write into")] = Path("data"),
    seed: int = 7,
    tracks: Annotated[int, typer.Option(min=1)] = 2000,
    users: Annotated[int, typer.Option(min=1)] = 1000,
    files: Annotated[int, typer.Option(min=0)] = 4,
    rows: Annotated[int, typer.Option(min=1)] = 10_000,
    days: Annotated[int, typer.Option(min=1)] = 3,
    start: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"])] = dt.datetime(2025, 6, 24),
) -> None:
    """Write a realistic, seeded data set as CSV files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    songs, user_rows, cat = gen.dataset(seed, tracks, users)
    (out_dir / "songs.csv").write_bytes(gen.to_csv(songs))
    (out_dir / "users.csv").write_bytes(gen.to_csv(user_rows))
    rng = np.random.default_rng(seed + 1)
    dates = [start.date() + dt.timedelta(days=i) for i in range(days)]
    with progress() as bar:
        task = bar.add_task("stream files", total=files)
        for i in range(files):
            table = gen.streams_table(rng, cat, rows, dates)
            (out_dir / f"streams-{i:04d}.csv").write_bytes(gen.to_csv(table))
            bar.advance(task)
    out.print(f"wrote songs.csv, users.csv and {files} stream files of {rows} rows to {out_dir}", markup=False)


def register(parent: typer.Typer) -> None:
    """Add this package's commands to the `playcount` command."""
    parent.add_typer(app)
