"""`playcount replay-quarantine`: quarantined unknown ids re-judged after a metadata fix."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from playcount.cli.main import app as playcount
from playcount.core import lake
from playcount.core.lake import replay_prefix
from playcount.ops import replay as replay_module
from playcount.ops.pipeline import counters
from playcount.ops.replay import ReplayResult, replay_quarantine

BODY = (
    "user_id,track_id,listen_time\n"
    "u1,t1,2024-06-01 10:00:00\n"
    "u1,t5,2024-06-01 11:00:00\n"
    "u2,t6,2024-06-01 12:00:00\n"
    "u7,t1,2024-06-02 10:00:00\n"
    "u1,t1,not a time\n"
)
SONG_HEADER = "track_id,track_name,artists,track_genre,duration_ms\n"


def _judge_notified(validator, bucket, key):
    """Judge `key` as the service would: from the S3 notification it produced."""
    refs = [r for r in bucket.notifications() if r.key == key]
    assert refs, f"no notification for {key}"
    return [validator.handle(r) for r in refs]


def _event_set(bucket):
    events = bucket.events()
    return {(r["user_id"], r["track_id"]) for r in events.select(["user_id", "track_id"]).to_pylist()}


def test_replay_after_a_metadata_fix_recovers_the_rows_once(known, validator, bucket, settings):
    # GIVEN a file whose rows name tracks t5, t6 and user u7, unknown when it was judged
    first = known(BODY)
    assert first.quarantined_by_reason == {"unknown_track_id": 2, "unknown_user_id": 1, "bad_listen_time": 1}
    # WHEN nothing was fixed yet, THEN a replay leaves everything as it is
    assert replay_quarantine(settings) == ReplayResult(files_scanned=1)
    # WHEN songs.csv gains t5, and the quarantine is replayed
    validator.handle(bucket.put(f"{settings.songs_prefix}t5.csv", SONG_HEADER + "t5,Five,E,pop,1000\n"))
    bucket.notifications()
    result = replay_quarantine(settings)
    # THEN the unknown-id rows of that file go through the pipeline again, as one stream file
    assert result.files_scanned == 1 and result.files_replayed == 1
    assert (result.rows_replayed, result.rows_recovered, result.rows_still_unknown) == (3, 1, 2)
    assert result.replay_key.startswith(replay_prefix(settings))
    (report,) = _judge_notified(validator, bucket, result.replay_key)
    assert report.kind == "replay" and report.rows_accepted == 1
    assert report.quarantined_by_reason == {"unknown_track_id": 1, "unknown_user_id": 1}
    assert ("u1", "t5") in _event_set(bucket) and report.dates == [first.dates[0]]
    # AND the source is marked, so a second replay sends nothing new
    marker = bucket.json(f"{lake.rejected_prefix(settings, first.file_id)}replayed.json")
    assert marker["replay_key"] == result.replay_key and marker["rows"] == 3
    again = replay_quarantine(settings)
    assert again.files_replayed == 0 and again.rows_replayed == 0 and again.files_scanned == 1
    # WHEN users.csv later gains u7, THEN the rows still unknown (now in the replay's own quarantine) follow
    users = "user_id,user_age,user_country,created_at\nu7,33,FR,2023-01-01\n"
    validator.handle(bucket.put(f"{settings.users_prefix}u7.csv", users))
    bucket.notifications()
    third = replay_quarantine(settings)
    assert (third.files_replayed, third.rows_replayed, third.rows_recovered) == (1, 2, 1)
    (report,) = _judge_notified(validator, bucket, third.replay_key)
    assert report.rows_accepted == 1 and report.quarantined_by_reason == {"unknown_track_id": 1}
    assert _event_set(bucket) == {("u1", "t1"), ("u1", "t5"), ("u7", "t1")}
    # AND the row that is not an unknown id (a bad timestamp) was never replayed
    sent = [bucket.rows(lake.archive_key(settings, r.replay_key)) for r in (result, third)]
    replayed = sent[0] + sent[1]
    assert all(r["listen_time"] != "not a time" for r in replayed)
    assert {(r["source_file_id"], r["source_line"]) for r in sent[0]} == {
        (first.file_id, "2"),
        (first.file_id, "3"),
        (first.file_id, "4"),
    }


def test_an_interrupted_replay_resends_the_same_object_and_counts_once(known, validator, bucket, settings, monkeypatch):
    # GIVEN a replay that dies after uploading, before marking its sources
    known(BODY)
    validator.handle(bucket.put(f"{settings.songs_prefix}t5.csv", SONG_HEADER + "t5,Five,E,pop,1000\n"))
    bucket.notifications()

    def killed(*args, **kwargs):
        raise SystemExit("killed before the marker")

    monkeypatch.setattr(replay_module, "_mark", killed)
    with pytest.raises(SystemExit):
        replay_quarantine(settings)
    monkeypatch.undo()
    # WHEN it runs again
    result = replay_quarantine(settings)
    # THEN it uploads the same object (same key and bytes), so its events count once
    reports = _judge_notified(validator, bucket, result.replay_key)
    assert len(reports) == 2 and reports[0].file_id == reports[1].file_id
    assert counters(settings)["rows_accepted"] == 3 + 3 + 1 + 1 + 1  # songs, users, t5, the file, the replay once
    assert ("u1", "t5") in _event_set(bucket)


def test_cli_prints_the_result(known, validator, bucket, settings, monkeypatch, capsys):
    known(BODY)
    validator.handle(bucket.put(f"{settings.songs_prefix}t6.csv", SONG_HEADER + "t6,Six,F,rock,1000\n"))
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    # (the app, not `main`: main configures process-wide logging onto the captured stderr)
    result = CliRunner().invoke(playcount, ["replay-quarantine"])
    assert result.exit_code == 0, result.stderr
    out = result.stdout  # (loggers cached earlier in this test process print here too)
    printed = json.loads(out[out.index("{\n") :])
    assert printed["files_replayed"] == 1 and printed["rows_recovered"] == 1
