"""query-api: requests/s and p50/p99 latency at 64 concurrent clients, beside FastAPI's own ceiling.

In one run, on loopback, each server a single uvicorn process (uvloop + httptools, as deployed):
- `trivial`: a bare FastAPI app whose one route returns a constant (the framework's ceiling);
- `genre_day`: GET /genres/{genre}/days/{date} of the real API (`python -m playcount.api.main`)
  over 3 days x 20 genres written by the real writer, keys rotated across those 60 lookups,
  with the default cache (API_CACHE_SECONDS=2: what clients get in steady state);
- `genre_day_uncached`: the same with API_CACHE_SECONDS=0 (every request queries DynamoDB,
  here the moto emulator, which dominates: a floor, not a DynamoDB figure).
The load comes from a separate process: 64 keep-alive HTTP/1.1 connections on asyncio (uvloop),
each sending its next request as soon as the previous answer is read (closed loop). Each run
lasts a bounded time after a warm-up; trivial and genre_day alternate, and the figures are the
medians over the rounds. Targets (issue 8): genre_day >= half of trivial's requests/s, p99 <= 50 ms.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import os
import random
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from bench.common import PeakRss, main, median, percentile
from playcount.core.config import Settings

CLIENTS = 64
GENRES = 20
# the API's default (what clients get); BENCH_API_CACHE_SECONDS compares another lifetime
CACHE_SECONDS = float(os.environ.get("BENCH_API_CACHE_SECONDS", Settings.model_fields["api_cache_seconds"].default))
DAYS = [dt.date(2025, 6, 22) + dt.timedelta(days=i) for i in range(3)]
ROOT = Path(__file__).resolve().parent.parent

trivial = FastAPI()


@trivial.get("/ping")
async def ping() -> dict[str, bool]:
    return {"ok": True}


# ---- the load generator (runs in its own process) ----------------------------------------------


async def _client(host: str, port: int, paths: list[str], until: float, warm_until: float, out: dict[str, Any]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    requests = [f"GET {p} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for p in paths]
    i = random.randrange(len(requests))
    try:
        while True:
            started = time.perf_counter()
            if started >= until:
                return
            writer.write(requests[i % len(requests)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            ended = time.perf_counter()
            if started >= warm_until:
                out["latencies"].append(ended - started)
                if head[9:12] != b"200":
                    out["errors"] += 1
    finally:
        writer.close()


async def _load(host: str, port: int, paths: list[str], seconds: float, warmup: float) -> dict[str, Any]:
    out: dict[str, Any] = {"latencies": [], "errors": 0}
    now = time.perf_counter()
    warm_until, until = now + warmup, now + warmup + seconds
    await asyncio.gather(*(_client(host, port, paths, until, warm_until, out) for _ in range(CLIENTS)))
    lat = out["latencies"]
    return {
        "requests": len(lat),
        "rps": len(lat) / seconds,
        "p50_ms": percentile(lat, 50) * 1000,
        "p99_ms": percentile(lat, 99) * 1000,
        "errors": out["errors"],
    }


def _load_process(conn: Any, host: str, port: int, paths: list[str], seconds: float, warmup: float) -> None:
    with suppress(ImportError):
        import uvloop

        uvloop.install()
    conn.send(asyncio.run(_load(host, port, paths, seconds, warmup)))
    conn.close()


def measure(port: int, paths: list[str], seconds: float, warmup: float = 1.0) -> dict[str, Any]:
    """Drive `paths` on 127.0.0.1:`port` from a separate process; requests/s, p50, p99."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_load_process, args=(child, "127.0.0.1", port, paths, seconds, warmup))
    proc.start()
    child.close()  # ours: so a load generator that dies reads as EOF here, not as silence
    try:
        if not parent.poll(seconds + warmup + 60):
            raise TimeoutError("the load generator did not report")
        result: dict[str, Any] = parent.recv()
        return result
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()


# ---- servers -----------------------------------------------------------------------------------


def _wait_http(port: int, path: str, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing answered 200 on :{port}{path}")


@contextmanager
def _process(cmd: list[str], env: dict[str, str], port: int, ready_path: str) -> Any:
    from playcount.cli.emulator import die_with_parent

    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent
    )
    try:
        _wait_http(port, ready_path)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _warm(port: int, paths: list[str]) -> None:
    """Every lookup twice, so the run measures the steady state, not the first reads.

    On the emulator the first pass takes longer than the cache lifetime; the second finds the
    early entries expired and revalidates them (one HEAD read per date), so the run starts with
    every entry fresh.
    """
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        for path in paths * 2:
            client.get(path).raise_for_status()


def _samples(port: int, metric: str) -> dict[str, float]:
    """The API's samples of `metric` from /metrics, by the value of their first label."""
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=60).text
    return {
        line.split('"')[1]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(metric + "{")
    }


def _cache_lookups(port: int) -> dict[str, float]:
    """The API's cache counters: hit, miss, load, revalidated."""
    return _samples(port, "playcount_api_cache_lookups")


def _dynamodb_calls(port: int) -> float:
    """The API's DynamoDB calls so far, every operation."""
    return sum(_samples(port, "playcount_api_dynamodb_seconds_count").values())


def _requests_per_call(port: int, paths: list[str]) -> float:
    """DynamoDB requests per call of `paths` on an API without a cache (/metrics' own reads taken out)."""
    import httpx

    first = _dynamodb_calls(port)
    probe = _dynamodb_calls(port) - first  # what one /metrics read costs
    before = _dynamodb_calls(port)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        for path in paths:
            client.get(path).raise_for_status()
    return (_dynamodb_calls(port) - before - probe) / len(paths)


def _api(settings: Any, cache_seconds: float) -> tuple[list[str], dict[str, str], int]:
    from playcount.cli.emulator import EMBEDDED_CREDENTIALS, free_port

    port = free_port()
    env = {
        **os.environ,
        **settings.to_env(),
        **EMBEDDED_CREDENTIALS,
        "API_PORT": str(port),
        "API_CACHE_SECONDS": str(cache_seconds),
        "LOG_LEVEL": "WARNING",
    }
    return [sys.executable, "-m", "playcount.api.main"], env, port


TREND_SPANS = (3, 366)


def _trend_paths(span: int) -> list[str]:
    """A trend of every genre over `span` days ending on the last day written."""
    first = (DAYS[-1] - dt.timedelta(days=span - 1)).isoformat()
    return [f"/genres/genre-{i:02d}/days?from={first}&to={DAYS[-1].isoformat()}" for i in range(GENRES)]


def _write_days(settings: Any) -> list[str]:
    """3 days x 20 genres through the writer; the lookup paths over them."""
    from playcount.core import aws
    from playcount.core.kpis import DayKpis, GenreDay, GenreRank, HourStats, SongRank
    from playcount.writer.apply import apply

    rng = random.Random(8)
    genres = [f"genre-{i:02d}" for i in range(GENRES)]
    ddb = aws.client(settings, "dynamodb")
    for day in DAYS:
        per_genre = []
        for g in genres:
            listens = rng.randint(500, 20_000)
            songs = [
                SongRank(
                    rank=r, track_id=f"{g}-t{r}", track_name=f"Track {r}", artists="A;B", listen_count=listens // 9
                )
                for r in (1, 2, 3)
            ]
            per_genre.append(
                GenreDay(
                    genre=g,
                    listen_count=listens,
                    unique_listeners=listens // 3,
                    total_listening_time_ms=listens * 200_000,
                    avg_listening_time_per_user_ms=600_000.0,
                    top_songs=songs,
                )
            )
        ranked = sorted(per_genre, key=lambda x: (-x.listen_count, x.genre))[:5]
        kpis = DayKpis(
            date=day,
            version=1,
            computed_at=dt.datetime.now(dt.UTC),
            events=sum(x.listen_count for x in per_genre),
            genres=per_genre,
            top_genres=[
                GenreRank(rank=i + 1, genre=x.genre, listen_count=x.listen_count) for i, x in enumerate(ranked)
            ],
            hours=[
                HourStats(
                    hour=h,
                    listen_count=100 + h,
                    unique_listeners=50,
                    avg_listens_per_user=2.0,
                    track_diversity_index=0.5,
                    top_artist="A",
                    most_engaged_age_group="25-34",
                )
                for h in range(24)
            ],
        )
        apply(ddb, settings.dynamodb_table_name, kpis, lease_seconds=30, wait_seconds=30)
    return [f"/genres/{g}/days/{d.isoformat()}" for d in DAYS for g in genres]


def run(quick: bool) -> dict[str, Any]:
    from playcount.cli.emulator import free_port
    from playcount.cli.sandbox import sandbox
    from playcount.core import logs

    logs.configure("WARNING")  # bootstrap's info logs would go to stdout, where the JSON goes
    seconds, rounds = (3.0, 1) if quick else (10.0, 3)
    runs: dict[str, list[dict[str, Any]]] = {"trivial": [], "genre_day": [], "genre_day_uncached": []}
    with sandbox() as settings, ExitStack() as stack:
        paths = _write_days(settings)
        trivial_port = free_port()
        trivial_cmd = [sys.executable, "-m", "uvicorn", "bench.api:trivial", "--port", str(trivial_port)]
        trivial_cmd += ["--no-access-log", "--log-level", "warning"]
        stack.enter_context(_process(trivial_cmd, dict(os.environ), trivial_port, "/ping"))
        cmd, env, api_port = _api(settings, cache_seconds=CACHE_SECONDS)
        api = stack.enter_context(_process(cmd, env, api_port, "/ready"))
        rss = stack.enter_context(PeakRss(api.pid, children=False))
        for _ in range(rounds):
            runs["trivial"].append(measure(trivial_port, ["/ping"], seconds))
            _warm(api_port, paths)
            before = _cache_lookups(api_port)
            runs["genre_day"].append(measure(api_port, paths, seconds))
            after = _cache_lookups(api_port)
            runs["genre_day"][-1]["waited"] = after["miss"] - before["miss"]
            runs["genre_day"][-1]["loads"] = after["load"] - before["load"]
            runs["genre_day"][-1]["revalidated"] = after["revalidated"] - before["revalidated"]
        api_rss_mb = rss.mb
        cmd, env, uncached_port = _api(settings, cache_seconds=0)
        with _process(cmd, env, uncached_port, "/ready"):
            runs["genre_day_uncached"].append(measure(uncached_port, paths, min(seconds, 5.0)))
            trends = {span: _trend_paths(span) for span in TREND_SPANS}
            requests = {span: _requests_per_call(uncached_port, trends[span]) for span in TREND_SPANS}
            runs["trend_uncached"] = [measure(uncached_port, trends[max(TREND_SPANS)], min(seconds, 5.0))]

    figures: dict[str, Any] = {"clients": CLIENTS, "seconds_per_run": seconds, "rounds": rounds}
    figures["api_cache_seconds"] = CACHE_SECONDS
    for name, results in runs.items():
        figures[f"{name}_rps"] = round(median([r["rps"] for r in results]))
        figures[f"{name}_p50_ms"] = round(median([r["p50_ms"] for r in results]), 2)
        figures[f"{name}_p99_ms"] = round(median([r["p99_ms"] for r in results]), 2)
        figures[f"{name}_errors"] = sum(r["errors"] for r in results)
    measured = runs["genre_day"]
    figures["genre_day_requests_waiting_on_dynamodb"] = sum(r["waited"] for r in measured)
    figures["genre_day_partition_reads"] = sum(r["loads"] for r in measured)
    figures["genre_day_head_revalidations"] = sum(r["revalidated"] for r in measured)
    figures["genre_day_vs_trivial_rps_ratio"] = round(figures["genre_day_rps"] / figures["trivial_rps"], 3)
    for span in TREND_SPANS:  # the trend's access pattern: a bounded number of queries, not one per day
        figures[f"trend_{span}_days_dynamodb_requests_per_call"] = round(requests[span], 2)
    figures["api_peak_rss_mb"] = api_rss_mb
    return figures


if __name__ == "__main__":
    main("api", run)
