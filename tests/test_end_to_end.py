"""One stream file flows S3 -> SQS -> validator -> runner -> writer -> DynamoDB -> API."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest

from playcount.core import aws
from playcount.devstack import generate
from playcount.ops.pipeline import counters, wait_until_idle
from tests.support import oracle
from tests.support.helpers import get_json, wait_for

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


@pytest.mark.smoke  # the smallest file through every service: `make check`'s end-to-end test
def test_any_genre_name_is_counted_and_served_by_its_percent_encoded_name(settings, stack):
    # GIVEN the four services, and songs whose genres are in several scripts and cases, one
    # decomposed (forro + combining acute), one with '/', and one that cannot be a key (BEL)
    stack(settings)
    s3 = aws.client(settings, "s3")
    songs = (
        "track_id,track_name,artists,track_genre,duration_ms\n"
        "t1,One,A,Música Mexicana,200000\n"
        "t2,Two,B,forro\u0301,180000\n"
        "t3,Three,C,R&B,240000\n"
        "t4,Four,D,K-Pop,100000\n"
        "t5,Five,E,Hip-Hop/Rap,120000\n"
        "t6,Six,F,rock\x07,100000\n"
    )
    users = "user_id,user_age,user_country,created_at\nu1,30,US,2020-01-01\nu2,41,GB,2021-05-02\n"
    s3.put_object(Bucket=settings.s3_bucket, Key=f"{settings.songs_prefix}songs.csv", Body=songs.encode())
    s3.put_object(Bucket=settings.s3_bucket, Key=f"{settings.users_prefix}users.csv", Body=users.encode())
    assert wait_until_idle(settings, timeout=120)

    # WHEN a stream file of 2025-06-24 is uploaded (the listen of t6 has no known track)
    listens = [
        ("u1", "t1", "10:00"), ("u1", "t1", "11:00"), ("u2", "t1", "12:00"), ("u1", "t2", "10:05"),
        ("u2", "t3", "10:10"), ("u1", "t3", "10:20"), ("u1", "t4", "13:00"), ("u2", "t5", "14:00"),
        ("u1", "t6", "15:00"),
    ]  # fmt: skip
    body = "user_id,track_id,listen_time\n" + "".join(f"{u},{t},2025-06-24 {h}:00\n" for u, t, h in listens)
    s3.put_object(Bucket=settings.s3_bucket, Key=f"{settings.s3_raw_data_prefix}genres.csv", Body=body.encode())

    # THEN each genre is counted under its stored name, and served by that name or as written
    api = f"http://127.0.0.1:{settings.api_port}"
    expected = {  # stored name: (as written in the songs file, listens, listeners)
        "música mexicana": ("Música Mexicana", 3, 2),
        "forró": ("forro\u0301", 1, 1),
        "r&b": ("R&B", 2, 2),
        "k-pop": ("K-Pop", 1, 1),
        "hip-hop/rap": ("Hip-Hop/Rap", 1, 1),
    }

    def served(name: str) -> Any:
        status, got = get_json(f"{api}/genres/{quote(name, safe='')}/days/2025-06-24")
        return got if status == 200 else None

    wait_for(lambda: served("música mexicana"), timeout=180, what="KPIs of música mexicana")
    for stored, (written, listens_, listeners) in expected.items():
        for name in (stored, written):
            got = served(name)
            assert got is not None, name
            assert (got["genre"], got["listen_count"], got["unique_listeners"]) == (stored, listens_, listeners)
    status, top = get_json(f"{api}/days/2025-06-24/top-genres")
    assert status == 200
    assert [g["genre"] for g in top["genres"]] == ["música mexicana", "r&b", "forró", "hip-hop/rap", "k-pop"]
    assert wait_until_idle(settings, timeout=60)
    c = counters(settings)
    # the BEL genre's track was quarantined (bad_track_genre), so its listen is an unknown track
    assert c["rows_quarantined"] == 2 and c["files_processed"] == 1
