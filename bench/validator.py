"""Validator throughput and memory, beside a plain pandas baseline on the same file in the same run.

Figures (each phase runs in a child process of its own, so its peak RSS is its own):
- `s3_*`: `Validator.handle` on a generated stream file in the emulator's S3: read from S3,
  judge, stage, de-duplicate, write the lake Parquet, the quarantine and the report;
- `core_*`: the same judging code (`streams.judge_file`) on the same file from local disk;
- `pandas_*`: `pandas.read_csv` plus the equivalent checks (trim, missing, id length, ISO
  timestamps with offsets, range, unknown ids, within-file duplicates) on the same local file;
  `agree` says both found the same number of accepted rows;
- `big_*`: the core on a ~2 GB file generated on local disk: peak RSS must stay well under 1 GB;
- `ids_{n}_*`: the known-ids index of a users catalog of n ids (5k, and 10M; `--quick` 1M), built
  as `KnownIds` builds it: `read_s` reads the ids from the catalog's segment in the emulator's S3
  (k-way merge, a row group at a time), `index_s` builds the index, `index_mb` is its size,
  `rss_mb` the process after the build and `peak_rss_mb` its peak; `lookup_ms` judges 10k
  distinct ids (half known) against it, median of 20. `reread_*` is what the validator did per
  stream file before, in a process of its own: read the whole id column, then `is_in`;
- `correction_{n}_*`: a 100-row users file (random ids, 50 changed) against a catalog of 5M users
  (`--quick` 1M): reading the current rows of its ids (`read_current_s`), writing its segment
  and manifest (`upsert_s`), and the segments' rows after (the base is not rewritten).

`python -m bench.validator` uses a 10M-row file; `--quick` 200k rows and a ~50 MB big file.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from bench.common import PeakRss, main, median
from playcount.core import aws, lake, logs, parquet, snapshots
from playcount.core.config import Settings, load_settings
from playcount.core.idindex import IdIndex
from playcount.core.messages import S3ObjectRef
from playcount.devstack import generate
from playcount.devstack.sandbox import sandbox
from playcount.validator import streams
from playcount.validator.main import build_validator

SEED = 20
TRACKS = 20_000
USERS = 10_000
CHUNK_ROWS = 1_000_000
START = dt.date(2025, 6, 1)
DAYS_PER_CHUNK = 3
UNKNOWN_SHARE = 0.01
BAD_TIME_SHARE = 0.005


# -- data ----------------------------------------------------------------------------------------
def _metadata(out: Path, quick: bool) -> Any:
    songs, users, cat = generate.dataset(SEED, TRACKS // 10 if quick else TRACKS, USERS // 10 if quick else USERS)
    pq.write_table(songs.select(["track_id"]), out / "songs.parquet")
    pq.write_table(users.select(["user_id"]), out / "users.parquet")
    return songs, users, cat


def _write_streams(path: Path, cat: Any, *, rows: int | None = None, size: int | None = None) -> tuple[int, int]:
    """A stream file of `rows` rows (or about `size` bytes); 1% unknown tracks, 0.5% bad times."""
    rng = np.random.default_rng(SEED)
    written = chunk = 0
    with pacsv.CSVWriter(str(path), pa.schema([(c, pa.string()) for c in ("user_id", "track_id", "listen_time")])) as w:
        while (rows is not None and written < rows) or (size is not None and path.stat().st_size < size):
            n = CHUNK_ROWS if rows is None else min(CHUNK_ROWS, rows - written)
            days = [START + dt.timedelta(days=(chunk * DAYS_PER_CHUNK + i) % 60) for i in range(DAYS_PER_CHUNK)]
            table = generate.streams_table(rng, cat, n, days)
            tracks = pc.if_else(pa.array(rng.random(n) < UNKNOWN_SHARE), "no-such-track", table["track_id"])
            times = pc.if_else(pa.array(rng.random(n) < BAD_TIME_SHARE), "not a time", table["listen_time"])
            w.write_table(pa.table({"user_id": table["user_id"], "track_id": tracks, "listen_time": times}))
            written += n
            chunk += 1
    return written, path.stat().st_size


# -- phases (each in a child process) ------------------------------------------------------------
def _ignore(*args: object) -> None:
    pass


def _core(path: str, meta: str, work: str) -> dict[str, Any]:
    tracks = IdIndex.build([pq.read_table(Path(meta) / "songs.parquet")["track_id"]])
    users = IdIndex.build([pq.read_table(Path(meta) / "users.parquet")["user_id"]])
    started = time.perf_counter()
    with open(path, "rb") as body:
        judged = streams.judge_file(body, path, tracks, users, work, on_day=_ignore, on_quarantine=_ignore)
    return {"rows": judged.rows_read, "accepted": judged.rows_accepted, "seconds": time.perf_counter() - started}


def _pandas(path: str, meta: str, work: str) -> dict[str, Any]:
    import pandas as pd

    tracks = set(pq.read_table(Path(meta) / "songs.parquet")["track_id"].to_pylist())
    users = set(pq.read_table(Path(meta) / "users.parquet")["user_id"].to_pylist())
    started = time.perf_counter()
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    user = frame["user_id"].str.strip()
    track = frame["track_id"].str.strip()
    text = frame["listen_time"].str.strip()
    when = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    now = pd.Timestamp.now(tz="UTC")
    bad = (
        (user == "")
        | (track == "")
        | (text == "")
        | (user.str.len() > 128)
        | (track.str.len() > 128)
        | when.isna()
        | (when < pd.Timestamp("2000-01-01", tz="UTC"))
        | (when > now + pd.Timedelta(days=1))
        | ~track.isin(tracks)
        | ~user.isin(users)
    )
    good = pd.DataFrame({"user_id": user[~bad], "track_id": track[~bad], "listen_time": when[~bad]})
    unique = good.drop_duplicates()
    return {"rows": len(frame), "accepted": len(unique), "seconds": time.perf_counter() - started}


def _s3(env: dict[str, str], key: str) -> dict[str, Any]:
    settings = load_settings(env)
    ref = _ref(aws.client(settings, "s3"), settings, key)
    validator = build_validator(settings)
    started = time.perf_counter()
    report = validator.handle(ref)
    assert report is not None and report.status == "accepted", report
    return {"rows": report.rows_read, "accepted": report.rows_accepted, "seconds": time.perf_counter() - started}


def _child(target: Any, args: tuple[Any, ...], queue: Any) -> None:
    logs.configure("WARNING")  # stdout carries the figures
    queue.put(target(*args))


def _measured(target: Any, *args: Any) -> dict[str, Any]:
    """Run `target(*args)` in a fresh process; its result plus the process's peak RSS in MiB."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(target, args, queue))
    proc.start()
    with PeakRss(proc.pid, children=False) as rss:
        result = queue.get()
        proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"{target.__name__} failed with exit code {proc.exitcode}")
    return {**result, "peak_rss_mb": rss.mb}


def _ref(s3: Any, settings: Settings, key: str) -> S3ObjectRef:
    head = s3.head_object(Bucket=settings.s3_bucket, Key=key)
    return S3ObjectRef(bucket=settings.s3_bucket, key=key, etag=head["ETag"].strip('"'), size=head["ContentLength"])


def _upload_all(settings: Settings, songs: pa.Table, users: pa.Table, path: Path) -> str:
    """Metadata uploaded and validated, the stream file uploaded (not yet judged); its key."""
    s3 = aws.client(settings, "s3")
    validator = build_validator(settings)
    for key, table in ((f"{settings.songs_prefix}songs.csv", songs), (f"{settings.users_prefix}users.csv", users)):
        s3.put_object(Bucket=settings.s3_bucket, Key=key, Body=generate.to_csv(table))
        validator.handle(_ref(s3, settings, key))
    key = f"{settings.s3_raw_data_prefix}bench/streams.csv"
    s3.upload_file(str(path), settings.s3_bucket, key)
    return key


def _rate(result: dict[str, Any]) -> int:
    return round(result["rows"] / result["seconds"])


def _user_ids(numbers: np.ndarray) -> pa.Array:
    """The ids of user numbers, such as `user-0001234567` (15 bytes)."""
    padded = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width=10, padding="0")
    return pc.binary_join_element_wise("user-", padded, "")


def _ids_catalog(settings: Settings, n: int) -> None:
    """Make a users catalog of n ids (one segment), as a 10M-user upload leaves it after compaction."""
    ids = _user_ids(np.arange(n))
    table = pa.table({"user_id": ids, "user_age": pa.array(np.arange(n) % 90, pa.int64())})
    snapshots.replace_catalog(settings, aws.client(settings, "s3"), parquet.filesystem(settings), "users", table)


def _queries(n: int) -> pa.Array:
    """10k distinct ids: 5k of the catalog's, 5k it does not have."""
    rng = np.random.default_rng(SEED)
    unknown = pc.binary_join_element_wise("nobody-", pc.cast(pa.array(np.arange(5000)), pa.string()), "")
    return pa.concat_arrays([_user_ids(rng.choice(n, 5000, replace=False)), unknown])


def _ids_lookup(env: dict[str, str], n: int) -> dict[str, Any]:
    """Build the validator's index of the catalog as `KnownIds` does, then time 10k lookups against it."""
    settings = load_settings(env)
    s3, fs = aws.client(settings, "s3"), parquet.filesystem(settings)
    manifest = snapshots.read_manifest(settings, s3, "users")
    started = time.perf_counter()
    chunks = [rows["user_id"] for rows in snapshots.iter_current(settings, fs, manifest, ["user_id"])]
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    index = IdIndex.build(chunks)
    index_s = time.perf_counter() - started
    del chunks
    assert len(index) == n
    rss_mb = psutil.Process().memory_info().rss / 2**20
    queries = _queries(n)
    lookups = []
    for _ in range(20):
        t = time.perf_counter()
        hits = index.contains(queries)
        lookups.append(time.perf_counter() - t)
    assert pc.sum(hits).as_py() == 5000
    return {
        "read_s": round(read_s, 2),
        "index_s": round(index_s, 2),
        "index_mb": round(index.nbytes / 2**20, 1),
        "rss_mb": round(rss_mb, 1),
        "lookup_ms": round(median(lookups) * 1000, 2),
    }


def _ids_reread(env: dict[str, str], n: int) -> dict[str, Any]:
    """What the validator did per stream file before: read the whole id column, then `is_in`."""
    settings = load_settings(env)
    s3, fs = aws.client(settings, "s3"), parquet.filesystem(settings)
    manifest = snapshots.read_manifest(settings, s3, "users")
    queries = _queries(n)
    started = time.perf_counter()
    whole = pq.read_table(lake.path(settings, manifest.segments[0].key), filesystem=fs, columns=["user_id"])
    assert pc.sum(pc.is_in(queries, value_set=whole["user_id"].combine_chunks())).as_py() == 5000
    return {"s": round(time.perf_counter() - started, 3)}


def _correction(env: dict[str, str], n: int) -> dict[str, Any]:
    """A 100-row users file (random ids, 50 of them changed) upserted onto a catalog of n users."""
    settings = load_settings(env)
    s3, fs = aws.client(settings, "s3"), parquet.filesystem(settings)
    rng = np.random.default_rng(SEED)
    picked = rng.choice(n, 100, replace=False)
    ages = np.where(np.arange(100) % 2 == 0, 200, picked % 90)  # 200: a changed age (the catalog has 0..89)
    rows = pa.table({"user_id": _user_ids(picked), "user_age": pa.array(ages, pa.int64())})
    manifest = snapshots.read_manifest(settings, s3, "users")
    started = time.perf_counter()
    current = snapshots.read_current(settings, fs, manifest, ["user_age"], ids=rows["user_id"])
    read_s = time.perf_counter() - started
    changed = rows.join(current, "user_id", right_suffix="_old").filter(
        pc.not_equal(pc.field("user_age"), pc.field("user_age_old"))
    )
    started = time.perf_counter()
    after = snapshots.upsert(settings, s3, fs, manifest, "correction", rows)
    upsert_s = time.perf_counter() - started
    return {
        "read_current_s": round(read_s, 3),
        "changed": changed.num_rows,
        "upsert_s": round(upsert_s, 3),
        "segment_rows": "/".join(str(seg.rows) for seg in after.segments),
    }


def _correction_figures(quick: bool) -> dict[str, Any]:
    n = 1_000_000 if quick else 5_000_000
    with sandbox() as settings:
        _ids_catalog(settings, n)
        env = {**settings.to_env(), **{k: v for k, v in os.environ.items() if k.startswith("AWS_")}}
        result = _measured(_correction, env, n)
    return {f"correction_{n // 1_000_000}m_{k}": v for k, v in result.items()}


def _ids_figures(quick: bool) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for n in (5_000, 1_000_000 if quick else 10_000_000):
        with sandbox() as settings:
            _ids_catalog(settings, n)
            env = {**settings.to_env(), **{k: v for k, v in os.environ.items() if k.startswith("AWS_")}}
            result = _measured(_ids_lookup, env, n)
            reread = _measured(_ids_reread, env, n)
        label = f"ids_{n // 1000}k" if n < 1_000_000 else f"ids_{n // 1_000_000}m"
        figures.update({f"{label}_{k}": v for k, v in result.items()})
        figures.update({f"{label}_reread_{k}": v for k, v in reread.items()})
    return figures


# -- the benchmark -------------------------------------------------------------------------------
def run(quick: bool) -> dict[str, Any]:
    logs.configure("WARNING")
    rows = 200_000 if quick else 10_000_000
    big_size = (50 if quick else 2048) << 20
    with tempfile.TemporaryDirectory(prefix="bench-validator-") as tmp:
        root = Path(tmp)
        work = root / "work"
        work.mkdir()
        songs, users, cat = _metadata(root, quick)
        path = root / "streams.csv"
        _, size = _write_streams(path, cat, rows=rows)

        core = _measured(_core, str(path), str(root), str(work))
        pandas = _measured(_pandas, str(path), str(root), str(work))

        with sandbox() as settings:
            key = _upload_all(settings, songs, users, path)
            env = {**settings.to_env(), **{k: v for k, v in os.environ.items() if k.startswith("AWS_")}}
            on_s3 = _measured(_s3, env, key)
        path.unlink()

        big = root / "big.csv"
        big_rows, big_bytes = _write_streams(big, cat, size=big_size)
        big_core = _measured(_core, str(big), str(root), str(work))

    ids = {**_ids_figures(quick), **_correction_figures(quick)}
    return {
        "rows": rows,
        "file_mb": round(size / 2**20, 1),
        "s3_rows_per_s": _rate(on_s3),
        "s3_peak_rss_mb": on_s3["peak_rss_mb"],
        "core_rows_per_s": _rate(core),
        "core_peak_rss_mb": core["peak_rss_mb"],
        "pandas_rows_per_s": _rate(pandas),
        "pandas_peak_rss_mb": pandas["peak_rss_mb"],
        "core_vs_pandas": round(_rate(core) / _rate(pandas), 2),
        "agree": core["accepted"] == pandas["accepted"] == on_s3["accepted"],
        "big_file_mb": round(big_bytes / 2**20, 1),
        "big_rows": big_rows,
        "big_rows_per_s": _rate(big_core),
        "big_peak_rss_mb": big_core["peak_rss_mb"],
        **ids,
    }


if __name__ == "__main__":
    main("validator", run)
