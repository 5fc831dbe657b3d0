"""The metadata catalog on the emulator's S3: upserts as segments, reads, compaction, the known-ids cache."""

from __future__ import annotations

import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from playcount.core import aws, compaction, lake, parquet, snapshots
from playcount.core.compaction import GROWTH, SMALL_ROWS, plan_compaction
from playcount.core.known import KnownIds
from playcount.core.snapshots import Segment


@pytest.fixture
def lake_io(settings):
    return aws.client(settings, "s3"), parquet.filesystem(settings)


def _users(ids, age):
    return pa.table({"user_id": [f"u{i:06d}" for i in ids], "user_age": [age] * len(ids)})


def _upsert(settings, lake_io, name, table):
    s3, fs = lake_io
    return snapshots.upsert(settings, s3, fs, snapshots.read_manifest(settings, s3, "users"), name, table)


def _ages(settings, fs, manifest, **kwargs):
    rows = snapshots.read_current(settings, fs, manifest, ["user_age"], **kwargs)
    return dict(zip(rows["user_id"].to_pylist(), rows["user_age"].to_pylist(), strict=True))


def _merged(settings, fs, manifest):
    """Every current row, through the k-way merge."""
    return pa.concat_tables(snapshots.iter_current(settings, fs, manifest, ["user_age"])).to_pylist()


def test_the_newest_segment_wins_and_reads_see_only_the_ids_asked(settings, lake_io):
    _, fs = lake_io
    # GIVEN three upserts over overlapping ids
    _upsert(settings, lake_io, "a", _users(range(0, 100), 20))
    _upsert(settings, lake_io, "b", _users(range(50, 150), 30))
    manifest = _upsert(settings, lake_io, "c", _users([10, 120, 500], 40))
    # THEN each id's current row comes from its newest segment
    assert [s.rows for s in manifest.segments] == [100, 100, 3] and manifest.next_seq == 4
    ages = _ages(settings, fs, manifest)
    assert len(ages) == 151 and (ages["u000000"], ages["u000060"], ages["u000010"], ages["u000500"]) == (20, 30, 40, 40)
    assert [(r["user_id"], r["user_age"]) for r in _merged(settings, fs, manifest)] == sorted(ages.items())
    # AND a read by ids returns those ids only, as they were before a sequence number if asked
    wanted = pa.array(["u000010", "u000060", "u999999"])
    assert _ages(settings, fs, manifest, ids=wanted) == {"u000010": 40, "u000060": 30}
    assert _ages(settings, fs, manifest, ids=wanted, below_seq=3) == {"u000010": 20, "u000060": 30}
    assert _ages(settings, fs, manifest, ids=wanted, below_seq=1) == {}


def test_a_read_by_ids_reads_only_the_row_groups_that_can_hold_them(settings, lake_io):
    _, fs = lake_io
    manifest = _upsert(settings, lake_io, "big", _users(range(200_000), 20))
    parquet = pq.ParquetFile(lake.path(settings, manifest.segments[0].key), filesystem=fs)
    assert parquet.metadata.num_row_groups == 4  # sorted by id, 64k rows each
    wanted = snapshots.sorted_unique(pa.array(["u000005", "u000007", "u150000", "zzz"]))
    groups = snapshots.row_groups_holding(parquet, "user_id", wanted)
    assert [(g, ids.to_pylist()) for g, ids in groups] == [(0, ["u000005", "u000007"]), (2, ["u150000"])]


def test_a_writer_working_from_an_old_manifest_is_refused(settings, lake_io):
    s3, fs = lake_io
    first = _upsert(settings, lake_io, "a", _users([1], 20))
    _upsert(settings, lake_io, "b", _users([2], 20))
    with pytest.raises(snapshots.CatalogConflict):
        snapshots.upsert(settings, s3, fs, first, "late", _users([3], 20))
    assert [s.name for s in snapshots.read_manifest(settings, s3, "users").segments] == ["a", "b"]


def _segments(*rows):
    return tuple(Segment(f"k{i}", i + 1, n) for i, n in enumerate(rows))


@pytest.mark.fast
@pytest.mark.parametrize(
    ("rows", "merged"),
    [
        ((5_000_000,), ()),
        ((5_000_000, 100), ()),  # a correction never pulls in the base
        ((5_000_000, 100, 100), (100, 100)),  # small ones merge together
        ((5_000_000, 300_000, 100), ()),  # tiers: 300k is neither small nor within GROWTH x 100
        ((5_000_000, 300_000, 100_000), (300_000, 100_000)),
        ((5_000_000, 1_000_000, 300), ()),
        ((5_000_000, 800_000, 500_000), (5_000_000, 800_000, 500_000)),  # newer rows reach a quarter of the base
        ((5_000_000, 1_200_000), ()),
        ((5_000_000, 1_250_000), (5_000_000, 1_250_000)),
    ],
)
def test_the_compaction_plan_is_size_tiered(rows, merged):
    assert SMALL_ROWS < 300_000 and GROWTH == 4
    assert tuple(s.rows for s in plan_compaction(_segments(*rows), lambda _: True)) == merged


@pytest.mark.fast
def test_an_unfinished_segment_and_all_older_ones_are_left_alone():
    segments = _segments(1000, 100, 100, 100)
    unfinished = segments[2]
    assert plan_compaction(segments, lambda s: s != unfinished) == ()
    assert plan_compaction(segments, lambda s: s != segments[1]) == segments[2:]


def test_compaction_keeps_every_current_row_and_its_seq(settings, lake_io):
    s3, fs = lake_io
    # GIVEN a base and three small upserts over overlapping ids
    _upsert(settings, lake_io, "base", _users(range(0, 150_000), 20))
    _upsert(settings, lake_io, "c1", _users(range(100, 400), 30))
    _upsert(settings, lake_io, "c2", _users(range(300, 350), 40))
    before = _upsert(settings, lake_io, "c3", _users([5, 150_001], 50))
    current = _merged(settings, fs, before)
    # WHEN it is compacted
    after = compaction.compact(settings, s3, fs, before)
    # THEN the three small ones became one, the base is untouched, and every current row is the same
    assert after.segments[0] == before.segments[0] and len(after.segments) == 2
    assert after.segments[1].name.startswith(snapshots.COMPACTED) and after.segments[1].seq == 4
    assert after.next_seq == before.next_seq
    assert _merged(settings, fs, after) == current
    assert _ages(settings, fs, after) == _ages(settings, fs, before)
    merged = pq.read_table(lake.path(settings, after.segments[1].key), filesystem=fs)
    assert merged.num_rows == 302 and set(merged[snapshots.SEQ].to_pylist()) == {2, 3, 4}
    assert [r.key for r in after.retired] == [s.key for s in before.segments[1:]]
    # AND the merged-away segments stay readable until they have been retired long enough
    assert all(bucket_has(s3, settings, s.key) for s in before.segments)
    later = compaction.compact(settings, s3, fs, after, now=after.retired[0].at + compaction.RETAIN_SECONDS)
    assert later.retired == () and later.segments == after.segments
    assert not any(bucket_has(s3, settings, s.key) for s in before.segments[1:])


def test_a_segment_no_manifest_lists_is_deleted_once_old(settings, lake_io):
    s3, fs = lake_io
    manifest = _upsert(settings, lake_io, "a", _users([1], 20))
    orphan = snapshots.write_segment(settings, fs, "users", 2, "died-before-its-manifest", _users([2], 20))
    compaction.compact(settings, s3, fs, manifest)
    assert bucket_has(s3, settings, orphan.key)  # young: its writer may still be about to list it
    compaction.compact(settings, s3, fs, manifest, now=time.time() + compaction.RETAIN_SECONDS + 60)
    assert not bucket_has(s3, settings, orphan.key) and bucket_has(s3, settings, manifest.segments[0].key)


def bucket_has(s3, settings, key):
    return s3.list_objects_v2(Bucket=settings.s3_bucket, Prefix=key).get("KeyCount", 0) > 0


def test_known_ids_are_rebuilt_only_when_the_catalog_changes_and_then_incrementally(settings, lake_io):
    s3, fs = lake_io
    known = KnownIds(settings, s3, fs, "users")
    assert known.current() is None  # no catalog yet
    _upsert(settings, lake_io, "a", _users(range(1000), 20))
    first = known.current()
    assert first is not None and len(first) == 1000 and known.rebuilds == 1
    assert known.current() is first  # same manifest, same index
    # WHEN an upsert adds ids, and a compaction merges segments already indexed
    _upsert(settings, lake_io, "b", _users([5, 2000, 2001], 30))
    extended = known.current()
    upserted = _upsert(settings, lake_io, "c", _users([2002], 30))
    assert len(known.current()) == 1003
    assert compaction.compact(settings, s3, fs, upserted).segments[0].name.startswith(snapshots.COMPACTED)
    compacted = known.current()
    # THEN the new ids are known without a rebuild
    assert known.rebuilds == 1 and len(extended) == 1002 and len(compacted) == 1003
    probe = pa.array(["u000005", "u002001", "u002002", "u003000"])
    assert compacted.contains(probe).to_pylist() == [True, True, True, False]
    # WHEN the catalog is replaced whole, THEN ids it no longer has are not known any more
    snapshots.replace_catalog(settings, s3, fs, "users", _users([7], 20))
    replaced = known.current()
    assert known.rebuilds == 2 and replaced.contains(probe).to_pylist() == [False] * 4 and len(replaced) == 1


def test_a_lake_from_before_segments_is_adopted_once(settings, lake_io):
    # GIVEN a lake whose users were kept in one snapshot object, as before segments
    s3, fs = lake_io
    pq.write_table(_users(range(5), 30), lake.path(settings, snapshots.legacy_key(settings, "users")), filesystem=fs)
    # WHEN a validator starts (twice)
    adopted = snapshots.adopt_legacy(settings, s3, fs, "users")
    again = snapshots.adopt_legacy(settings, s3, fs, "users")
    # THEN the snapshot became the catalog once, and a kind without one is left alone
    assert adopted is not None and again is None
    manifest = snapshots.read_manifest(settings, s3, "users")
    assert [s.name for s in manifest.segments] == ["legacy"]
    assert _ages(settings, fs, manifest) == {f"u{i:06d}": 30 for i in range(5)}
    assert snapshots.adopt_legacy(settings, s3, fs, "songs") is None
    assert snapshots.read_manifest(settings, s3, "songs").etag is None


def test_a_manifest_kept_in_the_segments_folder_is_moved_by_the_next_write(settings, lake_io):
    s3, fs = lake_io
    # GIVEN a catalog whose manifest is where manifests were first kept: inside the segments' folder
    _upsert(settings, lake_io, "a", _users(range(0, 10), 20))
    first = snapshots.first_manifest_key(settings, "users")
    s3.copy_object(
        Bucket=settings.s3_bucket,
        Key=first,
        CopySource={"Bucket": settings.s3_bucket, "Key": snapshots.manifest_key(settings, "users")},
    )
    s3.delete_object(Bucket=settings.s3_bucket, Key=snapshots.manifest_key(settings, "users"))
    # THEN readers still find it
    found = snapshots.read_manifest(settings, s3, "users")
    assert found.moving and len(found.segments) == 1 and _ages(settings, fs, found)["u000001"] == 20
    # WHEN the catalog is next written
    manifest = _upsert(settings, lake_io, "b", _users([1], 30))
    # THEN the manifest is at its own key, none is left in the folder, and no update was lost
    listed = s3.list_objects_v2(Bucket=settings.s3_bucket, Prefix=snapshots.prefix(settings, "users"))["Contents"]
    assert all(o["Key"].endswith(".parquet") for o in listed), [o["Key"] for o in listed]
    again = snapshots.read_manifest(settings, s3, "users")
    assert not again.moving and again.etag == manifest.etag and len(again.segments) == 2
    assert _ages(settings, fs, again) == {f"u{i:06d}": 30 if i == 1 else 20 for i in range(10)}
    # AND a second writer still holding the moved manifest is refused, not merged over
    with pytest.raises(snapshots.CatalogConflict):
        snapshots.upsert(settings, s3, fs, found, "c", _users([2], 40))


def test_a_validator_moves_a_manifest_at_start_once(settings, lake_io):
    s3, fs = lake_io
    _upsert(settings, lake_io, "a", _users(range(0, 5), 20))
    first = snapshots.first_manifest_key(settings, "users")
    here = snapshots.manifest_key(settings, "users")
    s3.copy_object(Bucket=settings.s3_bucket, Key=first, CopySource={"Bucket": settings.s3_bucket, "Key": here})
    s3.delete_object(Bucket=settings.s3_bucket, Key=here)
    # WHEN two validators start, THEN one moves it, the other finds nothing to move
    moved = snapshots.move_manifest(settings, s3, "users")
    assert moved is not None and len(moved.segments) == 1
    assert snapshots.move_manifest(settings, s3, "users") is None
    listed = s3.list_objects_v2(Bucket=settings.s3_bucket, Prefix=snapshots.prefix(settings, "users"))["Contents"]
    assert all(o["Key"].endswith(".parquet") for o in listed)
    assert _ages(settings, fs, snapshots.read_manifest(settings, s3, "users")) == {f"u{i:06d}": 20 for i in range(5)}
