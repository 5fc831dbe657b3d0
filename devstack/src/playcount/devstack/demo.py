"""`playcount up --demo`: upload a generated data set like a real producer and show what came out."""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.parse
from collections.abc import Iterator

import numpy as np

from playcount.cli.console import err, out, progress, table
from playcount.core import aws, http
from playcount.core.config import Settings
from playcount.devstack import generate
from playcount.ops.pipeline import QueueDepth, counters, queue_depths, wait_until_idle

# a question for the lake, printed for the user to try (a constant: nothing is built from input)
SQL_EXAMPLE = '"SELECT listen_date, count(*) AS listens FROM events GROUP BY 1 ORDER BY 1"'


def _say(text: str) -> None:
    err.print(f"[demo] {text}", markup=False, highlight=False)


def _wait(settings: Settings, what: str, timeout: float) -> None:
    """Wait until the pipeline is idle, showing the messages still queued; RuntimeError after `timeout`."""
    with progress(transient=True) as bar:
        task = bar.add_task(what, total=None)

        def show(depths: list[QueueDepth]) -> None:
            queued = ", ".join(f"{q.name}: {q.visible + q.in_flight + q.delayed}" for q in depths)
            bar.update(task, description=f"{what} ({queued})")

        if not wait_until_idle(settings, timeout=timeout, on_poll=show):
            raise RuntimeError(f"{what}: not done within {timeout:.0f} s")


def upload_dataset(settings: Settings, seed: int, days: int, files_per_day: int, rows_per_file: int) -> list[dt.date]:
    s3 = aws.client(settings, "s3")
    songs, users, cat = generate.dataset(seed, n_tracks=1500, n_users=800)
    s3.put_object(Bucket=settings.s3_bucket, Key=f"{settings.songs_prefix}songs.csv", Body=generate.to_csv(songs))
    s3.put_object(Bucket=settings.s3_bucket, Key=f"{settings.users_prefix}users.csv", Body=generate.to_csv(users))
    _say(f"uploaded metadata: {songs.num_rows} songs, {users.num_rows} users")
    _wait(settings, "validating metadata", 300)
    rng = np.random.default_rng(seed + 1)
    start = dt.date.today() - dt.timedelta(days=days)
    dates = [start + dt.timedelta(days=i) for i in range(days)]
    for i in bar_range(days * files_per_day, "uploading stream files"):
        # each file mostly covers one day, with some listens spilling into the next (midnight-spanning)
        day = dates[i // files_per_day]
        spill = [day, day + dt.timedelta(days=1)] if day != dates[-1] else [day]
        streams = generate.streams_table(rng, cat, rows_per_file, spill)
        key = f"{settings.s3_raw_data_prefix}{day.isoformat()}/streams-{i:03d}.csv"
        s3.put_object(Bucket=settings.s3_bucket, Key=key, Body=generate.to_csv(streams))
    _say(f"uploaded {days * files_per_day} stream files ({rows_per_file} rows each)")
    return dates


def bar_range(n: int, what: str) -> Iterator[int]:
    with progress(transient=True) as bar:
        yield from bar.track(range(n), description=what)


def run(
    settings: Settings, api: str, seed: int, days: int = 3, files_per_day: int = 3, rows_per_file: int = 5000
) -> None:
    started = time.monotonic()
    dates = upload_dataset(settings, seed, days, files_per_day, rows_per_file)
    _wait(settings, "computing KPIs", 600)
    _say(f"pipeline idle after {time.monotonic() - started:.1f} s")
    out.print(table("Pipeline counters", ("counter", "value"), sorted(counters(settings).items())))
    dead = {q.dlq: q.dlq_depth for q in queue_depths(settings) if q.dlq_depth}
    if dead:
        raise RuntimeError(f"messages landed in dead-letter queues: {dead} (see the service logs)")
    rows = []
    for day in dates:
        with http.get(f"{api}/days/{day.isoformat()}/top-genres", timeout=10) as r:
            ranks = json.load(r)["genres"]
        rows += [(day.isoformat(), g["rank"], g["genre"], g["listen_count"]) for g in ranks]
    out.print(table("Top genres per day", ("date", "rank", "genre", "listens"), rows, numeric_from=3))
    genre = next((g for d, _, g, _ in rows if d == dates[-1].isoformat()), "pop")  # the last day's first
    out.print(
        "\nTry:\n"
        f"  {api}/genres/{urllib.parse.quote(genre, safe='')}/days/{dates[-1].isoformat()}\n"
        f"  {api}/days/{dates[-1].isoformat()}/top-genres\n"
        f"  {api}/days/{dates[-1].isoformat()}/hours\n"
        f"  {api}/genres/{urllib.parse.quote(genre, safe='')}/days?from={dates[0]}&to={dates[-1]}&format=csv\n"
        f"  {api}/days/{dates[-1].isoformat()}/genres\n"
        f"  playcount sql {SQL_EXAMPLE}\n"
        f"  {api}/genres   {api}/days   {api}/pipeline/status\n"
        f"  {api}/dashboard   {api}/explore   {api}/docs   {api}/metrics\n",
        markup=False,
        highlight=False,
    )
