"""Runner test helpers: lake state written directly in the validator's layout, and a Runner on
the shared warm local Spark session."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from playcount.core import aws, lake, parquet, snapshots
from playcount.core.kpis import DayKpis
from playcount.core.messages import FileValidated, KpiResultReady
from playcount.core.resources import RESULTS, resources
from playcount.runner.handler import Runner

UTC = dt.UTC
EVENT_SCHEMA = pa.schema(
    [("user_id", pa.string()), ("track_id", pa.string()), ("listen_time", pa.timestamp("us", tz="UTC"))]
)
Event = tuple[str, str, dt.datetime]


class Lake:
    """Writes events and metadata snapshots into a test's bucket, as the validator would."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.fs = parquet.filesystem(settings)
        self.s3 = aws.client(settings, "s3")

    def events(self, file_id: str, events: list[Event]) -> list[dt.date]:
        """One Parquet file per date that `events` touch; returns those dates."""
        by_day: dict[dt.date, list[Event]] = {}
        for e in events:
            by_day.setdefault(e[2].astimezone(UTC).date(), []).append(e)
        for day, rows in by_day.items():
            self.write(lake.events_key(self.settings, day, file_id), _table(rows))
        return sorted(by_day)

    def metadata(self, songs: dict[str, dict[str, Any]], users: dict[str, dict[str, Any]]) -> None:
        songs_table = pa.table(
            {
                "track_id": list(songs),
                "track_name": [s["track_name"] for s in songs.values()],
                "artists": [s["artists"] for s in songs.values()],
                "track_genre": [s["track_genre"] for s in songs.values()],
                "duration_ms": pa.array([int(s["duration_ms"]) for s in songs.values()], pa.int64()),
            }
        )
        users_table = pa.table({"user_id": list(users), "user_age": [int(u["user_age"]) for u in users.values()]})
        self.catalog("songs", songs_table)
        self.catalog("users", users_table)

    def catalog(self, kind: snapshots.Kind, table: pa.Table) -> None:
        """Make `table` the whole catalog of `kind`, in one segment."""
        snapshots.replace_catalog(self.settings, self.s3, self.fs, kind, table)

    def write(self, key: str, table: pa.Table) -> None:
        pq.write_table(table, lake.path(self.settings, key), filesystem=self.fs)


def _table(rows: list[Event]) -> pa.Table:
    return pa.table(
        {"user_id": [r[0] for r in rows], "track_id": [r[1] for r in rows], "listen_time": [r[2] for r in rows]},
        schema=EVENT_SCHEMA,
    )


@pytest.fixture
def lake_state(settings) -> Lake:
    return Lake(settings)


@pytest.fixture
def make_runner(settings, spark) -> Iterator[Any]:
    made: list[Runner] = []

    def make(**overrides: Any) -> Runner:
        sqs = aws.client(settings, "sqs")
        runner = Runner(
            settings=overrides.pop("settings", settings),
            spark=spark,
            s3=overrides.pop("s3", aws.client(settings, "s3")),
            sqs=sqs,
            ddb=aws.client(settings, "dynamodb"),
            fs=parquet.filesystem(settings),
            results_queue_url=aws.queue_url(sqs, resources(settings).queue(RESULTS).name),
            **overrides,
        )
        made.append(runner)
        return runner

    yield make
    for runner in made:
        runner.close()


class Helpers:
    """Plain helpers, handed to tests as the `h` fixture (test modules cannot import conftest)."""

    @staticmethod
    def validated(kind: str, dates: list[dt.date], file_id: str = "f") -> FileValidated:
        return FileValidated(
            kind=kind,  # type: ignore[arg-type]
            file_id=file_id,
            source_key=f"streams/{file_id}.csv",
            dates=dates,
            report_key="r",
            validated_at=dt.datetime.now(UTC),
        )

    @staticmethod
    def received_results(settings: Any, wait: float = 1.0) -> list[tuple[KpiResultReady, DayKpis]]:
        """Drain the writer's queue: each message with the result it points to."""
        sqs, s3 = aws.client(settings, "sqs"), aws.client(settings, "s3")
        url = aws.queue_url(sqs, resources(settings).queue(RESULTS).name)
        out = []
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=int(wait))
            messages = got.get("Messages", [])
            if not messages:
                return out
            for m in messages:
                ready = KpiResultReady.model_validate_json(m["Body"])
                body = s3.get_object(Bucket=settings.s3_bucket, Key=ready.result_key)["Body"].read()
                out.append((ready, DayKpis.model_validate(json.loads(body))))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    @staticmethod
    def comparable(results: list[DayKpis]) -> list[dict[str, Any]]:
        """Results without what legitimately differs between two computations."""
        return [
            r.model_dump(mode="json", exclude={"version", "computed_at"}) for r in sorted(results, key=lambda r: r.date)
        ]


@pytest.fixture
def h() -> type[Helpers]:
    return Helpers
