"""Container health checks: `python -m playcount.core.health [--max-age S] [--url URL]`.

A worker is healthy while its heartbeat file (HEALTH_FILE, rewritten on every poll of its
queue by `playcount.core.worker.record_health`) is younger than `--max-age` seconds. The API
is healthy while `--url` answers 2xx. Exit status 0 means healthy, 1 unhealthy: what Docker's
HEALTHCHECK, compose's `healthcheck` and ECS's container health check expect.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
from pathlib import Path

from playcount.core import http
from playcount.core.config import load_settings

DEFAULT_MAX_AGE_SECONDS = 120.0


def heartbeat_problem(path: str | None, max_age: float, now: float | None = None) -> str | None:
    """Why the heartbeat at `path` is not fresh, or None when it is."""
    if not path:
        return "HEALTH_FILE is not set, so the worker writes no heartbeat"
    try:
        mtime = Path(path).stat().st_mtime
    except FileNotFoundError:
        return f"no heartbeat at {path} yet (the worker has not polled its queue)"
    age = (time.time() if now is None else now) - mtime
    if age > max_age:
        return f"last heartbeat {age:.0f} s ago (limit {max_age:.0f} s)"
    return None


def http_problem(url: str, timeout: float = 3.0) -> str | None:
    """Why `url` is not answering 2xx within `timeout` seconds, or None when it is."""
    try:
        with http.get(url, timeout=timeout) as response:
            status = int(response.status)
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: {exc}"
    return None if 200 <= status < 300 else f"{url}: HTTP {status}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m playcount.core.health", description=__doc__)
    p.add_argument("--max-age", type=float, default=DEFAULT_MAX_AGE_SECONDS, help="heartbeat age limit, seconds")
    p.add_argument("--url", default=None, help="check this URL instead of the heartbeat file")
    args = p.parse_args(argv)
    problem = http_problem(args.url) if args.url else heartbeat_problem(load_settings().health_file, args.max_age)
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
