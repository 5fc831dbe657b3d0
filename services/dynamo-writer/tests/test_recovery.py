"""Applies cut short, writers paused past their lease, and tables written by the earlier writer."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from boto3.dynamodb.types import TypeSerializer

from playcount.core import aws
from playcount.core.errors import StaleResult, TransientError
from playcount.core.kpi_items import all_items
from playcount.writer import lease
from playcount.writer.apply import apply
from playcount.writer.config import WriterOptions
from playcount.writer.retry import Backoff
from playcount.writer.writes import Write, write_all
from tests.support.helpers import wait_for
from tests.support.writer import DAY, assert_holds_exactly, kpi_items_of, make_day, scan

V1 = {"rock": (90, ["r1", "r2", "r3"]), "pop": (120, ["p1", "p2", "p3"])}
V2 = {"rock": (91, ["r1", "r4", "r3"]), "pop": (121, ["p1", "p2", "p3"]), "zydeco": (3, ["z1", "z2"])}
V3 = {"rock": (99, ["r1", "r2", "r5"]), "pop": (130, ["p1", "p2", "p3"])}
_ser = TypeSerializer()


def _writes(kpis):
    return [Write((i["pk"], i["sk"]), {k: _ser.serialize(v) for k, v in i.items()}) for i in all_items(kpis)]


def _crash_halfway(ddb, table, kpis, lease_seconds):
    """What a writer killed mid-apply leaves: the claim taken, half of the items written, no commit."""
    claim = lease.claim(ddb, table, kpis, lease_seconds=lease_seconds, wait_seconds=1)
    assert claim is not None
    half = _writes(kpis)[::2]
    with ThreadPoolExecutor(4) as pool:
        write_all(ddb, table, kpis.version, half, pool=pool, backoff=Backoff(), guard=claim.ensure)
    return claim


def test_a_newer_result_cleans_up_after_an_apply_cut_short(ddb, table):
    # GIVEN version 1 applied, then version 2 cut short after writing half its items,
    # among them items of a genre (zydeco) that version 3 will not have
    apply(ddb, table, make_day(DAY, 1, V1))
    _crash_halfway(ddb, table, make_day(DAY, 2, V2), lease_seconds=0.5)
    assert any(k[0].startswith("GENRE#zydeco#") for k in kpi_items_of(ddb, table, DAY))

    # WHEN version 3 arrives (it waits out the dead writer's lease)
    v3 = make_day(DAY, 3, V3)
    applied = apply(ddb, table, v3, options=WriterOptions(claim_wait_seconds=10))

    # THEN the date holds exactly version 3: the cut-short apply's partitions were queried
    assert_holds_exactly(ddb, table, v3)
    assert applied.queried == 1 + 3 + 3  # the day partition; rock, pop and zydeco, and their trend items
    assert not [k for k in scan(ddb, table) if k[0].startswith("GENRE#zydeco#")]
    # and the next apply trusts the manifest again
    assert apply(ddb, table, make_day(DAY, 4, V1)).queried == 0


def test_the_redelivered_message_completes_an_apply_cut_short(ddb, table):
    # GIVEN version 2 cut short by a crash
    v2 = make_day(DAY, 2, V2)
    _crash_halfway(ddb, table, v2, lease_seconds=0.5)

    # WHEN SQS redelivers the same message
    apply(ddb, table, v2, options=WriterOptions(claim_wait_seconds=10))

    # THEN the date holds exactly version 2
    assert_holds_exactly(ddb, table, v2)


def test_a_date_being_applied_makes_others_wait_then_retry_later(ddb, table):
    # GIVEN a writer holding the date's lease
    claim = lease.claim(ddb, table, make_day(DAY, 5, V1), lease_seconds=30, wait_seconds=1)
    assert claim is not None

    # WHEN another result of the date arrives, THEN it gives up after its wait (SQS retries later)
    with pytest.raises(TransientError):
        apply(ddb, table, make_day(DAY, 6, V3), options=WriterOptions(claim_wait_seconds=0.3))
    assert kpi_items_of(ddb, table, DAY) == {}

    # and once the holder is done, it goes through
    claim.release()
    v6 = make_day(DAY, 6, V3)
    apply(ddb, table, v6)
    assert_holds_exactly(ddb, table, v6)


def test_a_writer_paused_past_its_lease_never_overwrites_the_newer_result(ddb, table):
    # GIVEN a writer that claimed version 2, then was paused until its lease expired,
    # and meanwhile another writer applied version 3
    v2, v3 = make_day(DAY, 2, V2), make_day(DAY, 3, V3)
    zombie = lease.claim(ddb, table, v2, lease_seconds=0.3, wait_seconds=1)
    assert zombie is not None
    wait_for(lambda: time.monotonic() > zombie.valid_until, timeout=5, what="the lease to run out")
    apply(ddb, table, v3, options=WriterOptions(claim_wait_seconds=5))

    # WHEN the paused writer resumes: its lease check stops it before any write
    with ThreadPoolExecutor(4) as pool, pytest.raises(TransientError):
        write_all(ddb, table, 2, _writes(v2), pool=pool, backoff=Backoff(), guard=zombie.ensure)
    assert_holds_exactly(ddb, table, v3)

    # AND even if it had passed that check just before the pause, DynamoDB refuses each write
    # that would replace a newer item: the conditions alone keep version 3's values
    with ThreadPoolExecutor(4) as pool, pytest.raises(StaleResult):
        write_all(ddb, table, 2, _writes(v2), pool=pool, backoff=Backoff())
    held = kpi_items_of(ddb, table, DAY)
    for key, item in held.items():
        if item["version"] != 3:
            # the one thing a write past the lease can do: add a key version 3 does not have
            assert item["version"] == 2 and key not in {(i["pk"], i["sk"]) for i in all_items(v3)}
    v3_keys = {(i["pk"], i["sk"]) for i in all_items(v3)}
    assert all(held[k]["version"] == 3 for k in v3_keys)


def test_a_table_written_by_the_earlier_writer_is_replaced_completely(ddb, table):
    # GIVEN a date as the first writer left it: items and a HEAD with genres but no manifest
    v1 = make_day(DAY, 1, V2)
    for item in all_items(v1):
        ddb.put_item(TableName=table, Item={k: _ser.serialize(v) for k, v in item.items()})
    ddb.put_item(
        TableName=table,
        Item={
            "pk": {"S": "DATE#2025-06-24"},
            "sk": {"S": "HEAD"},
            "version": {"N": "1"},
            "genres": {"L": [{"S": "pop"}, {"S": "rock"}, {"S": "zydeco"}]},
        },
    )

    # WHEN the new writer applies version 2 without zydeco
    v2 = make_day(DAY, 2, V3)
    applied = apply(ddb, table, v2)

    # THEN it found the stored keys by querying, and the date holds exactly version 2
    assert applied.queried == 1 + 3 + 3  # the day partition; three genres, and their trend items
    assert_holds_exactly(ddb, table, v2)


def test_a_writer_paused_mid_write_takes_back_what_a_newer_result_lacks(settings, ddb, table):
    # GIVEN a writer applying version 2 one write at a time, frozen just before its first
    # zydeco item reaches DynamoDB (a botocore hook holds the request), for long enough that
    # its lease runs out and another writer applies version 3, which has no zydeco at all
    v2, v3 = make_day(DAY, 2, V2), make_day(DAY, 3, V3)
    newer: list[object] = []

    def freeze_then_let_v3_in(request, **_):
        if not newer and b"zydeco" in (request.body or b""):
            newer.append(
                apply(aws.client(settings, "dynamodb"), table, v3, options=WriterOptions(claim_wait_seconds=10))
            )

    paused = aws.client(settings, "dynamodb")
    paused.meta.events.register("before-send.dynamodb.PutItem", freeze_then_let_v3_in)

    # WHEN the frozen writer resumes: its held write lands, the next ones find the lease gone
    with pytest.raises(TransientError):
        apply(paused, table, v2, options=WriterOptions(lease_seconds=0.5, parallelism=1))

    # THEN it took back what it had put, the zydeco item included: the date is exactly version 3
    assert newer, "the newer writer ran while the first one was frozen"
    assert_holds_exactly(ddb, table, v3)
    assert not [k for k in scan(ddb, table) if k[0].startswith("GENRE#zydeco#")]


def test_a_writer_refused_by_a_newer_item_takes_back_what_it_put(ddb, table):
    # GIVEN a version 3 item already in place, written by a newer writer that is still at work
    # (its HEAD not yet committed)
    v2 = make_day(DAY, 2, V2)
    newer = {**all_items(make_day(DAY, 3, V3))[0]}
    ddb.put_item(TableName=table, Item={k: _ser.serialize(v) for k, v in newer.items()})

    # WHEN version 2 is applied, THEN one of its writes is refused and it gives up as stale
    with pytest.raises(StaleResult):
        apply(ddb, table, v2)

    # AND none of its items outlive it; the newer item is untouched
    held = kpi_items_of(ddb, table, DAY)
    assert set(held) == {(newer["pk"], newer["sk"])} and held[(newer["pk"], newer["sk"])]["version"] == 3
