"""Judge one stream file (or replayed rows): parse, apply the row rules, de-duplicate, quarantine.

`judge_file` is local, no S3: the caller hands in a readable binary stream and the known ids
(any `IdLookup`, such as the catalog's cached index), and receives each de-duplicated day as a
local Parquet file (`on_day`), then the quarantine CSV. The benchmark runs it on a local file.

`judge_object` is the same judgement with the lake around it: each day's events go to their
lake key and the date's id index is written right after (both before the report, so before
the runner can hear of the date), then the quarantine CSV to `rejected/{file_id}/rows.csv`.
The rows are counted in the `ROWS` metric by outcome, and the file's report is returned, not
stored (the handler stores it).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from playcount.core import lake
from playcount.core.config import Settings
from playcount.core.idindex import IdLookup
from playcount.core.messages import S3ObjectRef
from playcount.core.reports import FileReport
from playcount.validator import dateindex, metrics, rules, storage
from playcount.validator.csvinput import open_csv
from playcount.validator.dedupe import Staging
from playcount.validator.quarantine import Quarantine, schema_for

COLUMNS = ("user_id", "track_id", "listen_time")
DUPLICATE = "duplicate_event"


@dataclass
class FileJudgement:
    """What one stream file came to: row counts by outcome, the dates it touched, timings."""

    rows_read: int = 0
    rows_quarantined: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    dates: list[dt.date] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def rows_accepted(self) -> int:
        return self.rows_read - self.rows_quarantined

    @property
    def duplicates(self) -> int:
        """Exact repeats of an event within this file (repeats of other files' events are not seen here)."""
        return self.by_reason.get(DUPLICATE, 0)


class KnownIdSource(Protocol):
    """The ids one kind's catalog knows now (`KnownIds`); None while the kind has no catalog."""

    def current(self) -> IdLookup | None: ...


def judge_object(
    settings: Settings,
    fs: Any,
    body: Any,
    fid: str,
    ref: S3ObjectRef,
    base: dict[str, Any],
    tracks: KnownIdSource,
    users: KnownIdSource,
) -> FileReport:
    """Judge the stream object in `body` into the lake (see the module doc); its report.

    Raises `FileRejected` when the file as a whole is refused (nothing is written then).
    """
    s = settings
    rejected_key = lake.rejected_rows_key(s, fid)

    def on_day(day: dt.date, local: Path) -> None:
        storage.upload(fs, local, lake.path(s, lake.events_key(s, day, fid)))
        dateindex.write(s, fs, day, fid, local)  # before the runner hears of the date

    started = time.perf_counter()
    known_tracks, known_users = tracks.current(), users.current()
    known_s = round(time.perf_counter() - started, 4)
    judged = judge_file(
        body,
        ref.key,
        known_tracks=known_tracks,
        known_users=known_users,
        work_dir=storage.work_dir(s),
        on_day=on_day,
        on_quarantine=lambda local: storage.upload(fs, local, lake.path(s, rejected_key)),
    )
    judged.timings["known_ids_s"] = known_s
    metrics.ROWS.labels("accepted").inc(judged.rows_accepted)
    for reason, count in judged.by_reason.items():
        metrics.ROWS.labels(reason).inc(count)
    return FileReport(
        **base,
        status="accepted",
        rows_read=judged.rows_read,
        rows_accepted=judged.rows_accepted,
        rows_quarantined=judged.rows_quarantined,
        quarantined_by_reason=judged.by_reason,
        duplicates=judged.duplicates,
        dates=judged.dates,
        rejected_rows_key=rejected_key if judged.rows_quarantined else None,
        archived_key=lake.archive_key(s, ref.key),
        validated_at=dt.datetime.now(dt.UTC),
        timings=judged.timings,
    )


def judge_file(
    body: Any,
    key: str,
    known_tracks: IdLookup | None,
    known_users: IdLookup | None,
    work_dir: str,
    on_day: Callable[[dt.date, Path], None],
    on_quarantine: Callable[[Path], None],
    now: dt.datetime | None = None,
) -> FileJudgement:
    """Judge the stream file in `body`; `on_day` gets each date's unique events, `on_quarantine` the CSV.

    Raises `FileRejected` when the file as a whole is refused (nothing is handed out then).
    """
    now = now or dt.datetime.now(dt.UTC)
    out = FileJudgement()
    stream = open_csv(body, key, COLUMNS, COLUMNS)
    staging = Staging(work_dir)
    quarantine = Quarantine(staging.dir / "rejected.csv", schema_for(COLUMNS))
    rows = malformed = 0
    started = time.perf_counter()
    try:
        for batch in stream.batches:
            judged = rules.judge_streams(batch, rows + 1, known_tracks, known_users, now)
            rows += batch.num_rows
            staging.add(judged.accepted)
            quarantine.write(judged.rejected)
            malformed += quarantine.write_malformed(stream.drain_malformed())
        malformed += quarantine.write_malformed(stream.drain_malformed())  # met after the last batch
        out.timings["read_judge_s"] = round(time.perf_counter() - started, 4)
        started = time.perf_counter()
        for day, local in staging.finish(on_duplicates=lambda d: quarantine.write(_duplicates_as_rejected(d))):
            on_day(day, local)
            local.unlink()
            out.dates.append(day)
        quarantine.close()
        if quarantine.rows:
            on_quarantine(quarantine.path)
        out.timings["write_s"] = round(time.perf_counter() - started, 4)
    finally:
        quarantine.close()
        staging.close()
    out.rows_read = rows + malformed
    out.rows_quarantined = quarantine.rows
    out.by_reason = dict(quarantine.counts)
    return out


def _duplicates_as_rejected(dupes: pa.Table) -> pa.Table:
    """Repeats of an event already accepted from this file, with the event's values as judged."""
    return pa.table(
        {
            "line": dupes["line"],
            "user_id": dupes["user_id"],
            "track_id": dupes["track_id"],
            "listen_time": pc.strftime(dupes["listen_time"], format="%Y-%m-%dT%H:%M:%SZ"),
            "reason": pa.repeat(DUPLICATE, dupes.num_rows),
        }
    )
