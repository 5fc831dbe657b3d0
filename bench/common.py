"""What every benchmark shares: timing, medians, peak RSS, and a uniform result table.

Each area lives in `bench/<area>.py` and exposes `run(quick: bool) -> dict[str, Any]`: a flat
mapping of figure name to value (numbers rounded sensibly, units in the name, e.g.
`rows_per_s`, `p99_ms`, `peak_rss_mb`), ratios measured side by side in the same run.
`python -m bench.<area> [--quick]` runs one area alone; `python -m bench.run` runs them all.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psutil


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


class PeakRss:
    """Samples the resident memory of process trees (default: this process) every 50 ms.

    With several pids, the peak is of their sum at one instant: what they held together.
    """

    def __init__(self, pid: int | None = None, children: bool = True, pids: list[int] | None = None) -> None:
        self.processes = [psutil.Process(p) for p in pids] if pids else [psutil.Process(pid)]
        self.children = children
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _rss(self) -> int:
        total = 0
        for process in self.processes:
            with suppress(psutil.Error):
                total += process.memory_info().rss
                if self.children:
                    for child in process.children(recursive=True):
                        with suppress(psutil.Error):
                            total += child.memory_info().rss
        return int(total)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self._rss())
            except psutil.Error:
                return
            self._stop.wait(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mb(self) -> float:
        return round(self.peak / 2**20, 1)


@contextmanager
def timer() -> Iterator[Callable[[], float]]:
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


def print_table(area: str, figures: dict[str, Any]) -> None:
    width = max((len(k) for k in figures), default=10)
    print(f"\n== {area}")
    for name, value in figures.items():
        print(f"  {name:<{width}}  {value}")


def main(area: str, run: Callable[[bool], dict[str, Any]]) -> None:
    parser = argparse.ArgumentParser(description=f"benchmark: {area}")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke check of the harness")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    figures = run(args.quick)
    if args.json:
        json.dump({area: figures}, sys.stdout, indent=1)
    else:
        print_table(area, figures)
