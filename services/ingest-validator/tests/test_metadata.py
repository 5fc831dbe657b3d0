"""Songs and users metadata through the emulator's S3: rules, the Spotify layout, upsert by id."""

from __future__ import annotations

import csv
import datetime as dt

import numpy as np

from playcount.core import aws, parquet, snapshots
from playcount.core.messages import FileValidated
from playcount.core.resources import VALIDATED, resources
from playcount.devstack import generate


def _current(settings, kind):
    manifest = snapshots.read_manifest(settings, aws.client(settings, "s3"), kind)
    return snapshots.read_current(settings, parquet.filesystem(settings), manifest)


def _songs(settings):
    return {r["track_id"]: r for r in _current(settings, "songs").to_pylist()}


def test_spotify_layout_is_accepted_as_is_with_genres_trimmed_and_lower_cased(validator, bucket, settings):
    # GIVEN the public Spotify tracks layout: an unnamed index column first, 21 columns in all
    songs = generate.songs_table(np.random.default_rng(1), 50)
    body = generate.to_csv(songs).replace(b',"pop"\n', b'," Pop "\n').replace(b',"rock"\n', b',"ROCK"\n')
    header = next(csv.reader([body.split(b"\n", 1)[0].decode()]))
    assert header[0] == "" and len(header) == 21 and b'," Pop "\n' in body and b',"ROCK"\n' in body
    # WHEN it is validated
    report = validator.handle(bucket.put(f"{settings.songs_prefix}tracks.csv", body))
    # THEN every track is in the snapshot, genres normalised, extra columns ignored
    assert report.status == "accepted" and report.rows_accepted == 50 and report.rows_quarantined == 0
    stored = _songs(settings)
    assert len(stored) == 50
    genres = {r["track_genre"] for r in stored.values()}
    assert genres <= set(generate.GENRES)
    first = songs.slice(0, 1).to_pylist()[0]
    assert stored[first["track_id"]]["duration_ms"] == first["duration_ms"]
    assert stored[first["track_id"]]["popularity"] == first["popularity"]


def test_song_rules_quarantine_bad_rows_and_repeated_ids(validator, bucket, settings):
    body = (
        "track_id,track_name,artists,track_genre,duration_ms\n"
        "t1,One,A,pop,200000\n"
        ",Nameless,A,pop,200000\n"
        "t2,Two,B,,200000\n"
        "t3,Three,C,pop,-5\n"
        "t4,Four,D,pop,ten\n"
        'tq,"=HYPERLINK(""http://x"",""y"")","Line\nbreak",pop,1000\n'
        "t1,One again,A,rock,100000\n"
    )
    report = validator.handle(bucket.put(f"{settings.songs_prefix}songs.csv", body))
    assert report.rows_read == 7 and report.rows_accepted == 2
    assert report.quarantined_by_reason == {
        "missing_track_id": 1,
        "missing_track_genre": 1,
        "bad_duration_ms": 2,
        "duplicate_track_id": 1,
    }
    stored = _songs(settings)
    assert stored["t1"]["track_genre"] == "pop"  # the first row of a repeated id wins
    assert stored["tq"]["track_name"] == '=HYPERLINK("http://x","y")'  # kept verbatim, never evaluated
    assert stored["tq"]["artists"] == "Line\nbreak"
    repeat = [r for r in bucket.rows(report.rejected_rows_key) if r["reason"] == "duplicate_track_id"]
    assert repeat[0]["line"] == "7" and repeat[0]["track_genre"] == "rock"


def test_user_rules(validator, bucket, settings):
    body = (
        "user_id,user_name,user_age,user_country,created_at\n"
        "u1,Ann,30,US,2020-01-01\n"
        ",Nobody,30,US,2020-01-01\n"
        "u2,Old,131,US,2020-01-01\n"
        "u3,Neg,-1,US,2020-01-01\n"
        "u4,NoDate,30,US,\n"
    )
    report = validator.handle(bucket.put(f"{settings.users_prefix}users.csv", body))
    assert report.rows_accepted == 1
    assert report.quarantined_by_reason == {"missing_user_id": 1, "bad_user_age": 2, "missing_created_at": 1}


def test_metadata_missing_required_column_rejects_the_file(validator, bucket, settings):
    report = validator.handle(bucket.put(f"{settings.songs_prefix}songs.csv", "track_id,track_name\nt1,One\n"))
    assert report.status == "rejected" and report.reason == "missing_columns"
    assert not bucket.keys(snapshots.prefix(settings, "songs"))


def test_later_file_upserts_by_id_and_recomputes_the_dates_it_changes(known, validator, bucket, settings):
    # GIVEN events of t1 on two dates and of t2 on a third, in the lake
    known("user_id,track_id,listen_time\nu1,t1,2024-04-01 10:00:00\nu1,t1,2024-04-02 10:00:00\n", "a.csv")
    known("user_id,track_id,listen_time\nu1,t2,2024-04-03 10:00:00\n", "b.csv")
    sqs = aws.client(settings, "sqs")
    url = aws.queue_url(sqs, resources(settings).queue(VALIDATED).name)
    _drain(sqs, url)
    # WHEN a songs file changes t1's genre, repeats t2 unchanged and adds t4
    body = (
        "track_id,track_name,artists,track_genre,duration_ms\n"
        "t1,One,A,Jazz,200000\n"
        "t2,Two,B,rock,180000\n"
        "t4,Four,D,blues,100000\n"
    )
    report = validator.handle(bucket.put(f"{settings.songs_prefix}more.csv", body))
    # THEN the snapshot is upserted by id (t3 kept, t1 updated, t4 added)
    stored = _songs(settings)
    assert sorted(stored) == ["t1", "t2", "t3", "t4"]
    assert stored["t1"]["track_genre"] == "jazz" and stored["t3"]["track_genre"] == "jazz"
    # AND only the dates holding events of changed tracks are sent for recomputation
    assert report.changed_ids == 1 and report.dates == [dt.date(2024, 4, 1), dt.date(2024, 4, 2)]
    sent = [FileValidated.model_validate_json(b) for b in _drain(sqs, url)]
    assert [(m.kind, m.dates) for m in sent] == [("songs", report.dates)]


def test_dates_survive_a_crash_between_catalog_and_report(known, validator, bucket, settings, crash_before_report):
    # GIVEN an event of t1 in the lake
    known("user_id,track_id,listen_time\nu1,t1,2024-04-05 10:00:00\n", "a.csv")
    ref = bucket.put(
        f"{settings.songs_prefix}fix.csv", "track_id,track_name,artists,track_genre,duration_ms\nt1,1,A,soul,1\n"
    )
    # WHEN the validator dies right after storing the new manifest (before the report)
    crash_before_report(ref)
    assert _songs(settings)["t1"]["track_genre"] == "soul"  # the catalog already changed
    # THEN the redelivery finds its segment listed, writes no other, and still finds t1 changed
    report = validator.handle(ref)
    assert report.changed_ids == 1 and report.dates == [dt.date(2024, 4, 5)]
    assert len([k for k in bucket.keys(snapshots.prefix(settings, "songs")) if report.file_id in k]) == 1
    assert _songs(settings)["t1"]["track_genre"] == "soul"


def _drain(sqs, url):
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages"):
        for m in messages:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


def test_any_genre_name_is_accepted_and_stored_normalised(validator, bucket, settings):
    # GIVEN genres in several scripts and cases, one decomposed (forro + combining acute), one with '/'
    body = (
        "track_id,track_name,artists,track_genre,duration_ms\n"
        "t1,One,A, Música Mexicana ,200000\n"
        "t2,Two,B,forro\u0301,200000\n"
        "t3,Three,C,R&B,200000\n"
        "t4,Four,D,K-Pop,200000\n"
        "t5,Five,E,Hip-Hop/Rap,200000\n"
        "t6,Six,F,rock\x07,200000\n"  # a control character (BEL)
        f"t7,Seven,G,{'é' * 129},200000\n"  # 129 characters, 258 bytes of UTF-8
        f"t8,Eight,H,{'a' * 257},200000\n"
        f"t9,Nine,I,{'é' * 128},200000\n"  # exactly 256 bytes
        "t10,Ten,J,\u202erock,200000\n"  # a right-to-left override
    )
    # WHEN the file is validated
    report = validator.handle(bucket.put(f"{settings.songs_prefix}songs.csv", body.encode()))
    # THEN every name that can be a key is accepted, trimmed, NFC and lower-cased
    assert report.rows_read == 10 and report.rows_accepted == 6
    assert report.quarantined_by_reason == {"bad_track_genre": 4}
    stored = {t: r["track_genre"] for t, r in _songs(settings).items()}
    assert stored == {
        "t1": "música mexicana",
        "t2": "forró",
        "t3": "r&b",
        "t4": "k-pop",
        "t5": "hip-hop/rap",
        "t9": "é" * 128,
    }
    assert stored["t2"] == "forr\u00f3"  # composed
    # AND the others are quarantined with their reason and their original text
    rejected = {r["track_id"]: r for r in bucket.rows(report.rejected_rows_key)}
    assert sorted(rejected) == ["t10", "t6", "t7", "t8"]
    assert {r["reason"] for r in rejected.values()} == {"bad_track_genre"}
    assert rejected["t6"]["track_genre"] == "rock\x07"
