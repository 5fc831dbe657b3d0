"""One stream file flows S3 -> SQS -> validator -> runner -> writer -> DynamoDB -> API."""

from __future__ import annotations

import csv
import datetime as dt
import io

import numpy as np
import pytest

from playcount.cli import generate
from playcount.core import aws
from playcount.core.pipeline import counters, wait_until_idle
from tests import oracle
from tests.helpers import get_json, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.spark]


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def test_stream_file_becomes_served_kpis(settings, stack):
    # GIVEN the four services on a fresh emulator, and metadata already validated
    stack(settings)
    s3 = aws.client(settings, "s3")
    songs, users, cat = generate.dataset(seed=11, n_tracks=300, n_users=120)
    songs_csv, users_csv = generate.to_csv(songs), generate.to_csv(users)
    s3.put_object(Bucket=settings.s3_bucket, Key=f"{settings.songs_prefix}songs.csv", Body=songs_csv)
    s3.put_object(Bucket=settings.s3_bucket, Key=f"{settings.users_prefix}users.csv", Body=users_csv)
    assert wait_until_idle(settings, timeout=120)

    # WHEN a producer uploads a stream file spanning midnight, with a duplicated event
    days = [dt.date(2025, 6, 24), dt.date(2025, 6, 25)]
    table = generate.streams_table(np.random.default_rng(3), cat, 3000, days)
    body = generate.to_csv(table) + generate.to_csv(table.slice(0, 1)).split(b"\n", 1)[1]
    s3.put_object(Bucket=settings.s3_bucket, Key=f"{settings.s3_raw_data_prefix}2025/06/24 file+1.csv", Body=body)

    # THEN the API serves exactly what an independent computation over the file says
    expected = oracle.kpis(
        [(r["user_id"], r["track_id"], r["listen_time"]) for r in _rows(body)],
        oracle.metadata_from_csv(_rows(songs_csv), "track_id"),
        oracle.metadata_from_csv(_rows(users_csv), "user_id"),
    )
    api = f"http://127.0.0.1:{settings.api_port}"
    day = "2025-06-25"
    genre = expected[day]["top_genres"][0]["genre"]
    want = expected[day]["genres"][genre]

    def served():
        status, body = get_json(f"{api}/genres/{genre}/days/{day}")
        return body if status == 200 and body["listen_count"] == want["listen_count"] else None

    got = wait_for(served, timeout=180, what=f"KPIs of {genre} on {day}")
    for field in ("listen_count", "unique_listeners", "total_listening_time_ms", "top_songs"):
        assert got[field] == want[field], field
    assert got["avg_listening_time_per_user_ms"] == pytest.approx(want["avg_listening_time_per_user_ms"], abs=1e-6)
    for d, exp in expected.items():
        status, top = get_json(f"{api}/days/{d}/top-genres")
        assert status == 200
        assert top["genres"] == exp["top_genres"]
    assert wait_until_idle(settings, timeout=60)
    c = counters(settings)
    assert c["files_validated"] == 3 and c["files_rejected"] == 0 and c["files_processed"] == 1
    status, pipeline = get_json(f"{api}/pipeline/status")
    assert status == 200 and pipeline["idle"] is True and pipeline["dlq_total"] == 0
