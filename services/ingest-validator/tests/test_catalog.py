"""The catalog at scale through the validator: corrections as small segments, the ids of a stream
file looked up in the cached index, and the dates a change affects read from the date index."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from playcount.core import lake, parquet, snapshots
from playcount.validator import dateindex

USERS_HEADER = "user_id,user_age,user_country,created_at\n"
SONGS_HEADER = "track_id,track_name,artists,track_genre,duration_ms\n"


def _users_csv(ids: list[int], ages: list[int]) -> bytes:
    table = pa.table(
        {
            "user_id": [f"user-{i:07d}" for i in ids],
            "user_age": ages,
            "user_country": ["FR"] * len(ids),
            "created_at": ["2020-01-01"] * len(ids),
        }
    )
    out = pa.BufferOutputStream()
    pacsv.write_csv(table, out)
    return out.getvalue().to_pybytes()


def _age(i: int) -> int:
    return 20 + i % 50


def test_a_100_row_correction_of_a_300k_catalog_is_a_100_row_segment(validator, bucket, settings):
    # GIVEN 300k users validated, one song, and events of six of the users, each on a date of its own
    s = settings
    everyone = list(range(300_000))
    validator.handle(bucket.put(f"{s.users_prefix}all.csv", _users_csv(everyone, [_age(i) for i in everyone])))
    validator.handle(bucket.put(f"{s.songs_prefix}songs.csv", SONGS_HEADER + "t1,One,A,pop,1000\n"))
    users_by_day = (10, 30, 11, 1000, 250_000, 60)
    events = "".join(f"user-{i:07d},t1,2024-07-0{day} 10:00:00\n" for day, i in enumerate(users_by_day, 1))
    assert validator.handle(bucket.stream("days.csv", "user_id,track_id,listen_time\n" + events)).rows_accepted == 6
    base = snapshots.read_manifest(s, bucket.s3, "users").segments
    assert [seg.rows for seg in base] == [300_000]
    base_etag = bucket.s3.head_object(Bucket=s.s3_bucket, Key=base[0].key)["ETag"]
    # WHEN a 100-row file changes the age of the 50 even users among 0..99 and repeats the 50 odd ones
    ids = list(range(100))
    report = validator.handle(
        bucket.put(f"{s.users_prefix}fix.csv", _users_csv(ids, [99 if i % 2 == 0 else _age(i) for i in ids]))
    )
    # THEN exactly those 50 are changed, and only the dates holding one of them are recomputed
    assert (report.rows_accepted, report.changed_ids) == (100, 50)
    assert report.dates == [dt.date(2024, 7, 1), dt.date(2024, 7, 2), dt.date(2024, 7, 6)]  # users 10, 30, 60
    # AND the correction is one 100-row segment; the 300k-row segment is listed and stored as it was
    after = snapshots.read_manifest(s, bucket.s3, "users")
    assert after.segments[0] == base[0] and len(after.segments) == 2
    assert (after.segments[1].rows, after.segments[1].name) == (100, report.file_id)
    assert bucket.s3.head_object(Bucket=s.s3_bucket, Key=base[0].key)["ETag"] == base_etag
    ages = snapshots.read_current(s, parquet.filesystem(s), after, ["user_age"])
    by_id = dict(zip(ages["user_id"].to_pylist(), ages["user_age"].to_pylist(), strict=True))
    assert len(by_id) == 300_000 and by_id["user-0000010"] == 99 and by_id["user-0000011"] == _age(11)
    # AND a stream file afterwards is judged against the same index (no new ids: nothing rebuilt)
    rebuilt = validator._known["users"].rebuilds
    assert validator.handle(bucket.stream("after.csv", "user_id,track_id,listen_time\n" + events)).rows_accepted == 6
    assert validator._known["users"].rebuilds == rebuilt


def test_affected_dates_are_exactly_the_dates_holding_a_changed_id(known, validator, bucket, settings):
    # GIVEN u1 on two dates (from two files), u2 on a third, t2 only on a fourth
    known("user_id,track_id,listen_time\nu1,t1,2024-08-01 10:00:00\nu2,t1,2024-08-03 10:00:00\n", "a.csv")
    known("user_id,track_id,listen_time\nu1,t1,2024-08-02 10:00:00\nu3,t2,2024-08-04 10:00:00\n", "b.csv")
    # WHEN u1's age changes and u3 is repeated unchanged, THEN only u1's dates are recomputed
    users = USERS_HEADER + "u1,31,US,2020-01-01\nu3,25,DE,2022-03-04\n"
    report = validator.handle(bucket.put(f"{settings.users_prefix}more.csv", users))
    assert report.changed_ids == 1 and report.dates == [dt.date(2024, 8, 1), dt.date(2024, 8, 2)]
    # WHEN t2's genre changes, THEN only t2's date is; a change of a track without events recomputes nothing
    songs = SONGS_HEADER + "t2,Two,B,blues,180000\nt3,Three,C,soul,240000\n"
    report = validator.handle(bucket.put(f"{settings.songs_prefix}more.csv", songs))
    assert report.changed_ids == 2 and report.dates == [dt.date(2024, 8, 4)]
    # AND the index answers for ids in several files and dates, with no other date
    s3, fs = bucket.s3, parquet.filesystem(settings)
    assert dateindex.dates_with(settings, s3, fs, "user_id", ["u2", "u3", "nobody"]) == [
        dt.date(2024, 8, 3),
        dt.date(2024, 8, 4),
    ]
    assert dateindex.dates_with(settings, s3, fs, "track_id", ["t1"]) == [dt.date(2024, 8, d) for d in (1, 2, 3)]
    assert dateindex.dates_with(settings, s3, fs, "track_id", []) == []


def test_the_date_index_lives_outside_the_event_partitions(known, bucket, settings):
    report = known("user_id,track_id,listen_time\nu1,t1,2024-08-01 10:00:00\nu1,t2,2024-08-01 11:00:00\n")
    day = dt.date(2024, 8, 1)
    # the partition the runner lists holds the events file only
    assert bucket.keys(lake.date_partition(settings, day)) == [lake.events_key(settings, day, report.file_id)]
    assert bucket.events().num_rows == 2
    index = {c: lake.id_index_key(settings, c, day, report.file_id) for c in dateindex.COLUMNS}
    assert not any(k.startswith(lake.streams_root(settings)) for k in index.values())
    fs = parquet.filesystem(settings)
    stored = {c: pq.read_table(lake.path(settings, k), filesystem=fs)["id"].to_pylist() for c, k in index.items()}
    assert stored == {"user_id": ["u1"], "track_id": ["t1", "t2"]}


def test_stream_files_use_the_cached_index_until_the_catalog_changes(known, validator, bucket, settings):
    # GIVEN two stream files judged against the same catalog
    known("user_id,track_id,listen_time\nu1,t1,2024-09-01 10:00:00\n", "a.csv")
    known("user_id,track_id,listen_time\nu9,t1,2024-09-01 11:00:00\n", "b.csv")
    users = validator._known["users"]
    assert users.rebuilds == 1  # built once, for the first file
    # WHEN users gains u9, THEN the next file knows u9 and never held a stale answer
    validator.handle(bucket.put(f"{settings.users_prefix}u9.csv", USERS_HEADER + "u9,40,NL,2024-01-01\n"))
    report = known("user_id,track_id,listen_time\nu9,t1,2024-09-01 11:00:00\nu8,t1,2024-09-01 12:00:00\n", "c.csv")
    assert report.rows_accepted == 1 and report.quarantined_by_reason == {"unknown_user_id": 1}


def test_two_validators_upserting_at_once_lose_no_row(bucket, settings):
    # GIVEN two validators (two processes' worth: each has its own in-process lock and cache)
    from concurrent.futures import ThreadPoolExecutor

    from playcount.validator.main import build_validator

    validators = [build_validator(settings), build_validator(settings)]
    refs = [
        bucket.put(f"{settings.songs_prefix}part-{n:02d}.csv", SONGS_HEADER + f"t{n},Song {n},A,pop,1000\n")
        for n in range(12)
    ]
    # WHEN they judge twelve songs files at the same time, six each
    with ThreadPoolExecutor(12) as pool:
        reports = list(pool.map(lambda i: validators[i % 2].handle(refs[i]), range(12)))
    # THEN every file was applied and every track is in the catalog
    assert all(r is not None and r.status == "accepted" for r in reports)
    manifest = snapshots.read_manifest(settings, bucket.s3, "songs")
    current = snapshots.read_current(settings, parquet.filesystem(settings), manifest, ["track_id"])
    assert sorted(current["track_id"].to_pylist()) == sorted(f"t{n}" for n in range(12))
