"""`playcount up --demo`: upload a generated data set like a real producer and show what came out."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
import urllib.parse

import numpy as np

from playcount.cli import generate
from playcount.core import aws, http
from playcount.core.config import Settings
from playcount.core.pipeline import counters, queue_depths, wait_until_idle

# a question for the lake, printed for the user to try (a constant: nothing is built from input)
SQL_EXAMPLE = '"SELECT listen_date, count(*) AS listens FROM events GROUP BY 1 ORDER BY 1"'


def _say(text: str) -> None:
    print(f"[demo] {text}", file=sys.stderr, flush=True)


def upload_dataset(settings: Settings, seed: int, days: int, files_per_day: int, rows_per_file: int) -> list[dt.date]:
    s3 = aws.client(settings, "s3")
    songs, users, cat = generate.dataset(seed, n_tracks=1500, n_users=800)
    s3.put_object(Bucket=settings.s3_bucket, Key=f"{settings.songs_prefix}songs.csv", Body=generate.to_csv(songs))
    s3.put_object(Bucket=settings.s3_bucket, Key=f"{settings.users_prefix}users.csv", Body=generate.to_csv(users))
    _say(f"uploaded metadata: {songs.num_rows} songs, {users.num_rows} users; waiting for validation")
    if not wait_until_idle(settings, timeout=300):
        raise RuntimeError("metadata was not processed within 300 s")
    rng = np.random.default_rng(seed + 1)
    start = dt.date.today() - dt.timedelta(days=days)
    dates = [start + dt.timedelta(days=i) for i in range(days)]
    for i in range(days * files_per_day):
        # each file mostly covers one day, with some listens spilling into the next (midnight-spanning)
        day = dates[i // files_per_day]
        spill = [day, day + dt.timedelta(days=1)] if day != dates[-1] else [day]
        table = generate.streams_table(rng, cat, rows_per_file, spill)
        key = f"{settings.s3_raw_data_prefix}{day.isoformat()}/streams-{i:03d}.csv"
        s3.put_object(Bucket=settings.s3_bucket, Key=key, Body=generate.to_csv(table))
    _say(f"uploaded {days * files_per_day} stream files ({rows_per_file} rows each); waiting for KPIs")
    return dates


def run(
    settings: Settings, api: str, seed: int, days: int = 3, files_per_day: int = 3, rows_per_file: int = 5000
) -> None:
    started = time.monotonic()
    dates = upload_dataset(settings, seed, days, files_per_day, rows_per_file)
    if not wait_until_idle(settings, timeout=600):
        raise RuntimeError("the pipeline did not become idle within 600 s")
    _say(f"pipeline idle after {time.monotonic() - started:.1f} s; counters: {counters(settings)}")
    dead = {q.dlq: q.dlq_depth for q in queue_depths(settings) if q.dlq_depth}
    if dead:
        raise RuntimeError(f"messages landed in dead-letter queues: {dead} (see the service logs)")
    print("\nTop genres per day", flush=True)
    for day in dates:
        with http.get(f"{api}/days/{day.isoformat()}/top-genres", timeout=10) as r:
            ranks = json.load(r)["genres"]
        print(f"  {day}: " + ", ".join(f"{g['rank']}. {g['genre']} ({g['listen_count']})" for g in ranks))
    genre = ranks[0]["genre"] if ranks else "pop"
    print(
        "\nTry:\n"
        f"  {api}/genres/{urllib.parse.quote(genre, safe='')}/days/{dates[-1].isoformat()}\n"
        f"  {api}/days/{dates[-1].isoformat()}/top-genres\n"
        f"  {api}/days/{dates[-1].isoformat()}/hours\n"
        f"  {api}/genres/{urllib.parse.quote(genre, safe='')}/days?from={dates[0]}&to={dates[-1]}&format=csv\n"
        f"  {api}/days/{dates[-1].isoformat()}/genres\n"
        f"  playcount sql {SQL_EXAMPLE}\n"
        f"  {api}/genres   {api}/days   {api}/pipeline/status\n"
        f"  {api}/dashboard   {api}/explore   {api}/docs   {api}/metrics\n",
        flush=True,
    )
