"""Judge one stream file locally: parse, apply the row rules, stage, de-duplicate, quarantine.

No S3 here: the caller hands in a readable binary stream and the known ids (any `IdLookup`,
such as the catalog's cached index), and receives each de-duplicated day as a local Parquet
file (`on_day`), then the quarantine CSV. The handler uploads them; the benchmark runs this
same code on a local file.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from playcount.core.idindex import IdLookup
from playcount.validator import rules
from playcount.validator.csvinput import open_csv
from playcount.validator.quarantine import Quarantine, schema_for
from playcount.validator.staging import Staging

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
