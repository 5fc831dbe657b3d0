"""`make bench-quick` as a smoke check: the harness runs every area and writes its JSON table.

It asserts that figures were produced, never how fast they are (speed lives in the bench).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# part of `make test` (about 3 minutes); `pytest -m bench` runs it alone
pytestmark = [pytest.mark.bench, pytest.mark.e2e, pytest.mark.spark, pytest.mark.timeout(1800)]
ROOT = Path(__file__).parent.parent


def test_quick_bench_produces_every_table(tmp_path):
    out = tmp_path / "quick.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["mode"] == "quick" and report["machine"]["cpus"]
    for area, figures in report["areas"].items():
        assert "status" not in figures, (area, figures)
        numbers = [v for v in figures.values() if isinstance(v, int | float)]
        assert numbers, f"{area} printed no figures"
    e2e = report["areas"]["e2e"]
    assert e2e["freshness_files"] >= 3 and e2e["throughput_dlq_messages"] == 0
    assert e2e["clean_exit_codes"] == "all 0"
    # the baselines computed the same thing as Playcount, or their ratios would mean nothing
    assert report["areas"]["validator"]["agree"] is True
    runner = report["areas"]["runner"]
    assert 0.99 * runner["events"] <= runner["distinct_events"] <= runner["events"]
    catalog = report["areas"]["catalog"]
    assert catalog["clean_exit_codes"] == "all 0" and len(catalog["large_freshness_s"]) == 4
    # the job's own counters: catalog rows taking part never exceed the 2k tracks and 5k users the files use
    assert all(songs <= 2000 and users <= 5000 for songs, users in catalog["large_runner_rows_taking_part"])
