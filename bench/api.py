"""query-api: requests/s and p50/p99 latency at 64 concurrent clients, beside FastAPI's own ceiling.

In one run, on loopback, each server a single uvicorn process (uvloop + httptools, as deployed):
- `trivial`: a bare FastAPI app whose one route returns a constant (the framework's ceiling);
- `genre_day`: GET /genres/{genre}/days/{date} of the real API (`python -m playcount.api.main`)
  over 3 days x 20 genres written by the real writer, keys rotated across those 60 lookups,
  with the default cache (API_CACHE_SECONDS=2: what clients get in steady state);
- `genre_day_uncached`: the same with API_CACHE_SECONDS=0 (every request queries DynamoDB,
  here the moto emulator, which dominates: a floor, not a DynamoDB figure).
The load comes from wrk (Debian's package; scripts/setup.sh installs it), one thread holding 64
keep-alive HTTP/1.1 connections, each sending its next request as soon as the previous answer is
read (closed loop); a small Lua script rotates the requests over the lookups and prints the
figures. wrk is compiled C, so generating the load takes a small share of the CPU; the asyncio
generator in Python it replaces competed with the server it measured, and the ratio moved between
0.29 and 0.61 from run to run. wrk still shares the 2 cores with the servers and the emulator.
Any socket error, timeout or HTTP status >= 400 fails the area. Each run lasts a bounded time
after a 1 s warm-up run; trivial and genre_day alternate, and the figures are the medians over
the rounds.
Targets (issue 8): genre_day >= half of trivial's requests/s, p99 <= 50 ms.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from bench.common import PeakRss, main, median
from playcount.api.config import ApiSettings

CLIENTS = 64
GENRES = 20
# the API's default (what clients get); BENCH_API_CACHE_SECONDS compares another lifetime
CACHE_SECONDS = float(os.environ.get("BENCH_API_CACHE_SECONDS", ApiSettings.model_fields["api_cache_seconds"].default))
DAYS = [dt.date(2025, 6, 22) + dt.timedelta(days=i) for i in range(3)]
ROOT = Path(__file__).resolve().parent.parent

trivial = FastAPI()


@trivial.get("/ping")
async def ping() -> dict[str, bool]:
    return {"ok": True}


# ---- the load generator: wrk, in its own process ----------------------------------------------

WRK_THREADS = 1  # one event loop drives the 64 connections; a second would only take CPU from the server
WRK_TIMEOUT_S = 30  # a slower answer counts as a timeout (an error); also bounds wrk's latency histogram
WARMUP_S = 1

# request(): the requests, built once, in turn; done(): the figures as one JSON line (durations
# and latencies in microseconds).
_WRK_SCRIPT = """
local paths = {%(paths)s}
local requests, i = {}, 0
init = function(args)
  for k, path in ipairs(paths) do requests[k] = wrk.format("GET", path) end
end
request = function()
  i = i %% #requests + 1
  return requests[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\n%(marker)s {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "max_us": %%d, '
      .. '"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""
_MARKER = "BENCH_WRK_JSON"


def _lua_string(path: str) -> str:
    if not (path.isascii() and path.isprintable()):
        raise ValueError(f"not a plain request path: {path!r}")
    return json.dumps(path)  # printable ASCII: a JSON string literal is a Lua one


def _wrk(port: int, script: Path, seconds: int) -> dict[str, Any]:
    cmd = ["wrk", "-t", str(WRK_THREADS), "-c", str(CLIENTS), "-d", f"{seconds}s", "--timeout", f"{WRK_TIMEOUT_S}s"]
    cmd += ["--latency", "-s", str(script), f"http://127.0.0.1:{port}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(_MARKER + " ")]
    if proc.returncode != 0 or len(lines) != 1:
        tail = " | ".join((proc.stderr + proc.stdout).strip().splitlines()[-5:])
        raise RuntimeError(f"wrk on :{port} failed (exit {proc.returncode}): {tail}")
    report: dict[str, Any] = json.loads(lines[0][len(_MARKER) :])
    # wrk counts every complete answer as a request, the failed ones too: any error fails the area.
    # `status` counts HTTP >= 400; a path answering 1xx/3xx fails before the load, where each one
    # is read once and must answer 2xx (/ping in _wait_http, lookups in _warm, trends in _requests_per_call).
    errors = {k: report[k] for k in ("connect", "read", "write", "status", "timeout") if report[k]}
    if errors or not report["requests"]:
        raise RuntimeError(f"wrk on :{port}: {report['requests']} answers, errors {errors} (status: HTTP >= 400)")
    return report


def measure(port: int, paths: list[str], seconds: float) -> dict[str, Any]:
    """`paths` in turn on 127.0.0.1:`port`, 64 connections from wrk after a warm-up; requests/s, p50, p99."""
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        script = Path(tmp) / "rotate.lua"
        lua_paths = ", ".join(_lua_string(p) for p in paths)
        script.write_text(_WRK_SCRIPT % {"paths": lua_paths, "marker": _MARKER})
        _wrk(port, script, WARMUP_S)  # fresh connections and a warm server; its figures are dropped
        report = _wrk(port, script, max(1, round(seconds)))
    return {
        "requests": report["requests"],
        "rps": report["requests"] / (report["duration_us"] / 1e6),
        "p50_ms": report["p50_us"] / 1000,
        "p99_ms": report["p99_us"] / 1000,
        "errors": 0,  # _wrk raised otherwise
    }


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
    from playcount.devstack.emulator import die_with_parent

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
    from playcount.devstack.emulator import EMBEDDED_CREDENTIALS, free_port

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
    from playcount.core import logs
    from playcount.devstack.emulator import free_port
    from playcount.devstack.sandbox import sandbox

    logs.configure("WARNING")  # bootstrap's info logs would go to stdout, where the JSON goes
    if not shutil.which("wrk"):
        raise RuntimeError("wrk (the load generator) is not installed: scripts/setup.sh, or apt-get install wrk")
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
