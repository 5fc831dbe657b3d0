"""What every reliability scenario ends with: exact KPIs, every file accounted for, no duplicates.

- `World`: a small seeded catalogue uploaded and validated, and the stream files a scenario sends;
- `expected`: the independent oracle over the input the test itself knows to be acceptable;
- `served_differences`: every KPI the API serves, compared field by field with the oracle;
- `accounting_problems`: each uploaded file archived and counted, or rejected with a report;
  counters, lake objects and table items with nothing missing and nothing twice;
- `Running`: a started stack with its `World`, and `settled_exactly()`, all of the above at once.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from playcount.core import aws, keys, lake, ledger, parquet
from playcount.core.config import Settings
from playcount.core.kpis import RANKING_CHUNK
from playcount.core.resources import resources
from playcount.devstack import generate
from playcount.devstack.stack import Stack
from playcount.ops.pipeline import counters, queue_depths, wait_until_idle
from tests.support import oracle
from tests.support.helpers import get_json, wait_for

DAYS = [dt.date(2025, 6, 24), dt.date(2025, 6, 25)]
UNKNOWN_TRACK = "no-such-track-000000000"


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


@dataclass
class Upload:
    key: str
    body: bytes
    file_id: str
    good: list[tuple[str, str, str]]  # rows the test knows to be acceptable (before de-duplication)
    bad_rows: int  # rows the test knows must be quarantined (an unknown track id)
    rejected: bool = False  # the whole file must be rejected
    etag: str = ""

    @property
    def accepted_rows(self) -> int:
        """Acceptable rows minus repeats inside this file (those are quarantined as duplicates)."""
        normalised = {(u, t, oracle.parse_time(w)) for u, t, w in self.good}
        return len(normalised)


@dataclass
class World:
    settings: Settings
    songs: dict[str, dict[str, Any]]
    users: dict[str, dict[str, Any]]
    cat: generate.SyntheticCatalog
    metadata_rows: int
    uploads: list[Upload] = field(default_factory=list)
    baseline: dict[str, int] = field(default_factory=dict)

    @property
    def s3(self) -> Any:
        return aws.client(self.settings, "s3")

    def stream_file(self, name: str, rows: int, seed: int, bad_rows: int = 1) -> tuple[str, bytes, Upload]:
        """A generated stream file over DAYS plus `bad_rows` rows with an unknown track id."""
        table = generate.streams_table(np.random.default_rng(seed), self.cat, rows, DAYS)
        body = generate.to_csv(table)
        good = [(r["user_id"], r["track_id"], r["listen_time"]) for r in _rows(body)]
        for i in range(bad_rows):
            body += f"{good[0][0]},{UNKNOWN_TRACK},2025-06-24 0{i % 10}:00:00\n".encode()
        key = f"{self.settings.s3_raw_data_prefix}2025/06/24/{name}.csv"
        return key, body, Upload(key=key, body=body, file_id="", good=good, bad_rows=bad_rows)

    def upload(self, key: str, body: bytes, template: Upload | None = None) -> Upload:
        etag = self.s3.put_object(Bucket=self.settings.s3_bucket, Key=key, Body=body)["ETag"].strip('"')
        up = template or Upload(key=key, body=body, file_id="", good=[], bad_rows=0, rejected=True)
        up.file_id, up.etag = lake.file_id(key, etag), etag
        self.uploads.append(up)
        return up

    def upload_stream(self, name: str, rows: int, seed: int) -> Upload:
        key, body, template = self.stream_file(name, rows, seed)
        return self.upload(key, body, template)

    def upload_rejected(self, name: str) -> Upload:
        """An empty file: the validator must reject it as a whole, with a report."""
        return self.upload(f"{self.settings.s3_raw_data_prefix}2025/06/24/{name}.csv", b"")


def world(settings: Settings, *, seed: int = 5, tracks: int = 150, users: int = 80, timeout: float = 180) -> World:
    """Upload a small catalogue and wait until the validator has taken both metadata files in."""
    songs, users_t, cat = generate.dataset(seed=seed, n_tracks=tracks, n_users=users)
    songs_csv, users_csv = generate.to_csv(songs), generate.to_csv(users_t)
    s3 = aws.client(settings, "s3")
    s3.put_object(Bucket=settings.s3_bucket, Key=f"{settings.songs_prefix}songs.csv", Body=songs_csv)
    s3.put_object(Bucket=settings.s3_bucket, Key=f"{settings.users_prefix}users.csv", Body=users_csv)
    w = World(
        settings=settings,
        songs=oracle.metadata_from_csv(_rows(songs_csv), "track_id"),
        users=oracle.metadata_from_csv(_rows(users_csv), "user_id"),
        cat=cat,
        metadata_rows=songs.num_rows + users_t.num_rows,
    )
    wait_for(lambda: counters(settings)["files_validated"] >= 2, timeout=timeout, what="metadata validated")
    w.baseline = counters(settings)
    return w


def expected(w: World) -> dict[str, dict[str, Any]]:
    events = [e for u in w.uploads if not u.rejected for e in u.good]
    return oracle.kpis(events, w.songs, w.users)


# -- served KPIs ---------------------------------------------------------------------------------
def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(float(a), float(b), abs_tol=1e-6)
    return bool(a == b)


def _compare(where: str, got: dict[str, Any], want: dict[str, Any], diffs: list[str]) -> None:
    for name, value in want.items():
        if not _close(got.get(name), value):
            diffs.append(f"{where} {name}: served {got.get(name)!r}, expected {value!r}")


def served_differences(api: str, want: dict[str, dict[str, Any]]) -> list[str]:
    """Every difference between what the API serves and the oracle (empty when exact)."""
    diffs: list[str] = []
    status, days = get_json(f"{api}/days")
    if status != 200:
        return [f"/days answered {status}"]
    served_days = {d["date"] for d in days["days"]}
    if served_days != set(want):
        diffs.append(f"/days lists {sorted(served_days)}, expected {sorted(want)}")
    for day, exp in want.items():
        status, top = get_json(f"{api}/days/{day}/top-genres")
        if status != 200 or top["genres"] != exp["top_genres"]:
            diffs.append(f"{day} top genres: served {status} {top and top.get('genres')}, expected {exp['top_genres']}")
        status, hours = get_json(f"{api}/days/{day}/hours")
        served_hours = {h["hour"]: h for h in hours["hours"]} if status == 200 else {}
        if set(served_hours) != set(exp["hours"]):
            diffs.append(f"{day} hours: served {sorted(served_hours)}, expected {sorted(exp['hours'])}")
        for hour, h in exp["hours"].items():
            _compare(f"{day} hour {hour}", served_hours.get(hour, {}), h, diffs)
        for genre in generate.GENRES:
            status, got = get_json(f"{api}/genres/{genre}/days/{day}")
            if genre not in exp["genres"]:
                if status != 404:
                    diffs.append(f"{day} {genre}: served {status} for a genre with no listens")
                continue
            if status != 200:
                diffs.append(f"{day} {genre}: served {status}")
                continue
            _compare(f"{day} {genre}", got, exp["genres"][genre], diffs)
    return diffs


def wait_served_exactly(api: str, want: dict[str, dict[str, Any]], timeout: float = 300) -> None:
    last: list[str] = []

    def exact() -> bool:
        nonlocal last
        last = served_differences(api, want)
        return not last

    try:
        wait_for(exact, timeout=timeout, interval=1.0, what="served KPIs equal to the oracle")
    except AssertionError:
        raise AssertionError("served KPIs differ from the oracle:\n" + "\n".join(last[:40])) from None


# -- accounting ------------------------------------------------------------------------------------
def _list(s3: Any, bucket: str, prefix: str) -> dict[str, dict[str, Any]]:
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out.update({o["Key"]: o for o in page.get("Contents", [])})
    return out


def _scan(ddb: Any, table: str) -> list[dict[str, Any]]:
    items, start = [], None
    while True:
        kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = ddb.scan(**kwargs)
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def accounting_problems(w: World, want: dict[str, dict[str, Any]]) -> list[str]:
    """Everything that is missing, extra or counted twice (empty when the books balance)."""
    s = w.settings
    objects = _list(aws.client(s, "s3"), s.s3_bucket, "")
    problems: list[str] = []
    for u in w.uploads:
        problems += _file_problems(w, u, objects)
    problems += _counter_problems(w)
    problems += _lake_problems(w, objects)
    problems += _table_problems(w, want)
    for q in queue_depths(s):
        if not q.empty or q.dlq_depth:
            problems.append(f"queue {q.name}: {q.visible} visible, {q.in_flight} in flight, {q.dlq_depth} in its DLQ")
    return problems


def _quarantined(u: Upload) -> int:
    return len(u.good) + u.bad_rows - u.accepted_rows


def _file_problems(w: World, u: Upload, objects: dict[str, dict[str, Any]]) -> list[str]:
    """One file: judged, archived or rejected with a report, its original gone from the landing prefix."""
    s = w.settings
    s3, ddb = aws.client(s, "s3"), aws.client(s, "dynamodb")
    states = ledger.file_states(ddb, s.dynamodb_table_name, u.file_id)
    report_key = lake.report_key(s, u.file_id)
    if report_key not in objects:
        return [f"{u.key}: no report"]
    report = json.loads(s3.get_object(Bucket=s.s3_bucket, Key=report_key)["Body"].read())
    problems = []
    if u.key in objects:
        problems.append(f"{u.key}: the original is still in the landing prefix")
    if u.rejected:
        if report["status"] != "rejected" or "rejected" not in states:
            problems.append(f"{u.key}: expected rejected, report {report['status']}, states {sorted(states)}")
        if f"{lake.rejected_prefix(s, u.file_id)}report.json" not in objects:
            problems.append(f"{u.key}: no rejection report under {lake.rejected_prefix(s, u.file_id)}")
        return problems
    if report["status"] != "accepted" or not {"validated", "computed-streams"} <= set(states):
        problems.append(f"{u.key}: report {report['status']}, states {sorted(states)}")
    archived = objects.get(lake.archive_key(s, u.key))
    if archived is None or archived["Size"] != len(u.body):
        problems.append(f"{u.key}: not archived intact")
    if (report["rows_accepted"], report["rows_quarantined"]) != (u.accepted_rows, _quarantined(u)):
        problems.append(
            f"{u.key}: report says {report['rows_accepted']} accepted / {report['rows_quarantined']} quarantined, "
            f"expected {u.accepted_rows} / {_quarantined(u)}"
        )
    return problems


def _counter_problems(w: World) -> list[str]:
    """Each file counted exactly once (counters grow by exactly what was uploaded since the baseline)."""
    streams = [u for u in w.uploads if not u.rejected]
    c = counters(w.settings)
    want = {
        "files_received": len(w.uploads),
        "files_validated": len(streams),
        "files_rejected": len(w.uploads) - len(streams),
        "files_processed": len(streams),
        "rows_accepted": sum(u.accepted_rows for u in streams),
        "rows_quarantined": sum(_quarantined(u) for u in streams),
    }
    grew = {name: c[name] - w.baseline.get(name, 0) for name in want}
    return [f"counter {n} grew by {grew[n]}, expected {v}" for n, v in want.items() if grew[n] != v]


def _lake_problems(w: World, objects: dict[str, dict[str, Any]]) -> list[str]:
    """One Parquet object per (accepted file, date), holding exactly that file's clean rows of the date."""
    s = w.settings
    per_file_day: Counter[tuple[str, str]] = Counter()
    for u in w.uploads:
        for _, _, when in {(a, b, oracle.parse_time(t)) for a, b, t in u.good}:
            per_file_day[(u.file_id, when.date().isoformat())] += 1
    found = {k for k in objects if k.startswith(lake.streams_root(s))}
    want = {lake.events_key(s, dt.date.fromisoformat(d), f): n for (f, d), n in per_file_day.items()}
    problems = []
    if found != set(want):
        problems.append(f"lake objects: extra {sorted(found - set(want))[:5]}, missing {sorted(set(want) - found)[:5]}")
    fs = parquet.filesystem(s)
    for key in sorted(found & set(want)):
        rows = pq.read_metadata(lake.path(s, key), filesystem=fs).num_rows
        if rows != want[key]:
            problems.append(f"{key}: {rows} rows, expected {want[key]}")
    return problems


def _table_problems(w: World, want: dict[str, dict[str, Any]]) -> list[str]:
    """Exactly the items of the expected KPIs, each once; no partition nobody expects."""
    s = w.settings
    stored: dict[str, set[str]] = defaultdict(set)
    for item in _scan(aws.client(s, "dynamodb"), s.dynamodb_table_name):
        stored[item["pk"]["S"]].add(item["sk"]["S"])
    problems = []
    for day, exp in want.items():
        d = dt.date.fromisoformat(day)
        want_day = {keys.genre_rank_sk(r["rank"]) for r in exp["top_genres"]}
        want_day |= {keys.hour_sk(h) for h in exp["hours"]} | {keys.HEAD_SK}
        chunks = -(-len(exp["genres"]) // RANKING_CHUNK)  # the full ranking's items
        want_day |= {keys.ranking_sk(c) for c in range(chunks)}
        got_day = stored.pop(keys.day_pk(d), set()) - {keys.LOCK_SK}
        if got_day != want_day:
            problems.append(
                f"{day}: day items extra {sorted(got_day - want_day)}, missing {sorted(want_day - got_day)}"
            )
        for genre, g in exp["genres"].items():
            want_g = {keys.metric_sk(m) for m in keys.METRICS}
            want_g |= {keys.song_sk(t["rank"], t["track_id"]) for t in g["top_songs"]}
            got_g = stored.pop(keys.genre_day_pk(genre, d), set())
            if got_g != want_g:
                problems.append(
                    f"{day} {genre}: items extra {sorted(got_g - want_g)}, missing {sorted(want_g - got_g)}"
                )
            trend = stored.get(keys.trend_pk(genre), set())
            if keys.date_sk(d) not in trend:
                problems.append(f"{day} {genre}: no trend item")
            trend.discard(keys.date_sk(d))
    # a trend item of a (genre, day) nobody expects: not removed when its genre left the day
    stale_trends = sorted((pk, sk) for pk, sks in stored.items() if pk.startswith(keys.TREND_PK_PREFIX) for sk in sks)
    if stale_trends:
        problems.append(f"trend items nobody expects: {stale_trends[:10]}")
    leftovers = sorted(pk for pk in stored if pk.startswith(("GENRE#", "DATE#")))
    if leftovers:
        problems.append(f"KPI partitions nobody expects: {leftovers[:10]}")
    return problems


# -- services ----------------------------------------------------------------------------------------
def log_events(log_dir: Path, service: str) -> list[dict[str, Any]]:
    path = log_dir / f"{service}.log"
    if not path.exists():
        return []
    events = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return events


def wait_consuming(log_dir: Path, service: str, starts: int = 1, timeout: float = 180) -> None:
    """Wait until `service` has entered its consumer loop `starts` times (since the log began)."""
    wait_for(
        lambda: sum(e.get("event") == "consumer.start" for e in log_events(log_dir, service)) >= starts,
        timeout=timeout,
        what=f"{service} consuming (start #{starts})",
    )


class Running:
    """A started stack, its settings and log directory, and the `World` a scenario sends through it."""

    def __init__(self, settings, stack: Stack, log_dir) -> None:
        self.settings = settings
        self.stack = stack
        self.log_dir = log_dir
        self.api = f"http://127.0.0.1:{settings.api_port}"
        self.world: World | None = None

    @property
    def w(self) -> World:
        assert self.world is not None
        return self.world

    def sqs(self) -> Any:
        return aws.client(self.settings, "sqs")

    def send(self, stage: str, body: str) -> None:
        sqs = self.sqs()
        sqs.send_message(QueueUrl=aws.queue_url(sqs, resources(self.settings).queue(stage).name), MessageBody=body)

    def settled_exactly(self, timeout: float = 240) -> None:
        """Drained, serving exactly the oracle's KPIs, with every file accounted for."""
        assert wait_until_idle(self.settings, timeout=timeout), "the pipeline did not drain"
        want = expected(self.w)
        wait_served_exactly(self.api, want, timeout=timeout)
        problems = accounting_problems(self.w, want)
        assert not problems, "\n".join(problems)
