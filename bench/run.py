"""`make bench`: every benchmark area in its own process, one table, and JSON under bench/results/.

Areas: e2e (freshness, throughput, per-service memory), catalog (a 5M-user catalog), validator,
runner, writer, api. `make bench ONLY="catalog runner"` runs some of them.
`--quick` uses small sizes (a smoke check of the harness, under 3 minutes); figures from a
quick run say nothing about speed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import print_table

AREAS = ("e2e", "catalog", "validator", "runner", "writer", "api")
RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    import psutil

    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def run_area(area: str, quick: bool, timeout: float) -> dict[str, Any]:
    if not (Path(__file__).parent / f"{area}.py").exists():
        return {"status": "not written yet"}
    cmd = [sys.executable, "-m", f"bench.{area}", "--json"] + (["--quick"] if quick else [])
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=Path(__file__).parent.parent)
    except subprocess.TimeoutExpired:
        return {"status": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {"status": f"failed (exit {proc.returncode})", "error": " | ".join(tail)[:500]}
    figures = json.loads(proc.stdout[proc.stdout.index("{") :])[area]
    figures["bench_wall_s"] = round(time.monotonic() - started, 1)
    return dict(figures)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", choices=AREAS, default=list(AREAS))
    parser.add_argument("--out", default=None, help="JSON file (default bench/results/<quick|full>-<time>.json)")
    args = parser.parse_args()
    report: dict[str, Any] = {"machine": machine(), "mode": "quick" if args.quick else "full", "areas": {}}
    for area in args.only:
        print(f"[bench] {area} ...", file=sys.stderr, flush=True)
        report["areas"][area] = run_area(area, args.quick, timeout=900 if args.quick else 5400)
        print_table(area, report["areas"][area])
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else RESULTS / f"{report['mode']}-{stamp}.json"
    out.write_text(json.dumps(report, indent=1))
    print(f"\n[bench] wrote {out}", file=sys.stderr)
    failed = [a for a, f in report["areas"].items() if str(f.get("status", "ok")).startswith(("failed", "timed"))]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
