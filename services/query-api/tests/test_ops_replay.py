"""POST /ops/quarantine/replay against the real validator process: unknown ids recovered after a fix."""

from __future__ import annotations

import httpx

from playcount.core import aws, lake
from playcount.core.lake import replay_prefix
from playcount.core.reports import FileReport
from playcount.ops.pipeline import counters
from tests.support.helpers import wait_for

ADMIN_KEY = "replay-admin-key-0123456789"
SONGS = "track_id,track_name,artists,track_genre,duration_ms\nt1,One,A,rock,1000\n"
USERS = "user_id,user_age,user_country,created_at\nu1,30,FR,2023-01-01\n"
STREAMS = "user_id,track_id,listen_time\nu1,t1,2024-06-01 10:00:00\nu1,t9,2024-06-01 11:00:00\n"


def test_replay_sends_recovered_rows_through_the_validator_again(settings, stack, serve):
    # GIVEN the validator running, metadata knowing t1, and a file naming the unknown track t9
    stack(settings, services=("ingest-validator",))
    s3 = aws.client(settings, "s3")

    def judged(key: str, body: str) -> FileReport:
        """Upload, then wait for the validator's report (no runner here: the queues never idle)."""
        etag = s3.put_object(Bucket=settings.s3_bucket, Key=key, Body=body.encode())["ETag"].strip(
            '"'
        )  # events carry it unquoted
        return report(lake.file_id(key, etag))

    def report(file_id: str) -> FileReport:
        def read():
            try:
                obj = s3.get_object(Bucket=settings.s3_bucket, Key=lake.report_key(settings, file_id))
            except s3.exceptions.NoSuchKey:
                return None
            return FileReport.model_validate_json(obj["Body"].read())

        return wait_for(read, timeout=120, what=f"the report of {file_id}")

    judged(f"{settings.songs_prefix}songs.csv", SONGS)
    judged(f"{settings.users_prefix}users.csv", USERS)
    first = judged(f"{settings.s3_raw_data_prefix}day.csv", STREAMS)
    assert first.quarantined_by_reason == {"unknown_track_id": 1}
    api = serve(settings.model_copy(update={"api_key": ADMIN_KEY})).url
    key = {"X-API-Key": ADMIN_KEY}

    # WHEN nothing is fixed yet, THEN a replay sends nothing
    nothing = httpx.post(f"{api}/ops/quarantine/replay", headers=key, timeout=120)
    assert nothing.status_code == 200 and nothing.json()["files_replayed"] == 0

    # WHEN the songs gain t9 and the operator replays the quarantine
    judged(
        f"{settings.songs_prefix}more.csv", "track_id,track_name,artists,track_genre,duration_ms\nt9,Nine,B,jazz,900\n"
    )
    before = counters(settings)
    result = httpx.post(f"{api}/ops/quarantine/replay", headers=key, timeout=120).json()

    # THEN the row goes through the validator again and is accepted this time
    assert (result["files_replayed"], result["rows_replayed"], result["rows_recovered"]) == (1, 1, 1)
    assert result["replay_key"].startswith(replay_prefix(settings))
    after = wait_for(
        lambda: (c := counters(settings))["files_validated"] > before["files_validated"] and c,
        timeout=120,
        what="the replayed file to be judged",
    )
    assert after["rows_accepted"] == before["rows_accepted"] + 1
    assert after["rows_quarantined"] == before["rows_quarantined"]
    # AND the operation needs the key
    assert httpx.post(f"{api}/ops/quarantine/replay", timeout=30).status_code == 401
