"""Pipeline bookkeeping against the emulator: exact counts with many writers, no hot item, TTL.

Every worker marks every file it handles; with N instances of each worker those marks run
concurrently. A file's state is recorded once (a redelivery counts nothing), the counters
are spread over shard items (no single item takes every increment), and state items expire
once no message could still be redelivered.
"""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

from playcount.core import aws, keys, ledger


def _counter_items(ddb, table) -> list[dict]:
    items = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.COUNTERS_PK}},
        ConsistentRead=True,
    )["Items"]
    return [i for i in items if i["sk"]["S"] != keys.FRESHNESS_SK]


def test_many_writers_count_every_file_once_and_share_no_hot_item(settings):
    ddb, table = aws.client(settings, "dynamodb"), settings.dynamodb_table_name
    files = [f"file-{n:03d}" for n in range(96)]

    # WHEN 8 threads mark 96 files, every file twice (a redelivery), in any order
    def mark(file_id: str) -> bool:
        return ledger.mark_file(ddb, table, file_id, "validated", {"files_validated": 1, "rows_accepted": 10})

    with ThreadPoolExecutor(8) as pool:
        firsts = list(pool.map(mark, files + files[::-1]))

    # THEN each file counted once, exactly
    assert sum(firsts) == 96
    counted = ledger.read_counters(ddb, table)
    assert counted["files_validated"] == 96 and counted["rows_accepted"] == 960
    # AND the increments went to many items, none of which took them all
    shares = [int(i.get("files_validated", {}).get("N", 0)) for i in _counter_items(ddb, table)]
    assert len(shares) >= 8 and max(shares) < 96 / 4, shares


def test_a_mark_racing_itself_counts_once(settings):
    ddb, table = aws.client(settings, "dynamodb"), settings.dynamodb_table_name
    start = threading.Barrier(8)

    def mark(_: int) -> bool:
        start.wait()
        return ledger.mark_file(ddb, table, "the-file", "received", {"files_received": 1})

    with ThreadPoolExecutor(8) as pool:
        assert sorted(pool.map(mark, range(8))) == [False] * 7 + [True]
    assert ledger.read_counters(ddb, table)["files_received"] == 1


def test_a_mark_without_counters_is_one_conditional_put(settings):
    ddb, table = aws.client(settings, "dynamodb"), settings.dynamodb_table_name
    calls: list[str] = []
    ddb.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    assert ledger.mark_file(ddb, table, "meta-file", "computed-songs", {}) is True
    assert ledger.mark_file(ddb, table, "meta-file", "computed-songs", {}) is False
    assert calls == ["PutItem", "PutItem"]


def test_state_items_expire_once_no_message_can_be_redelivered(settings):
    ddb, table = aws.client(settings, "dynamodb"), settings.dynamodb_table_name
    ledger.mark_file(ddb, table, "ttl-file", "received", {"files_received": 1})
    item = ddb.get_item(
        TableName=table, Key={"pk": {"S": keys.file_state_pk("ttl-file")}, "sk": {"S": keys.file_state_sk("received")}}
    )["Item"]
    expires = dt.datetime.fromtimestamp(int(item[ledger.TTL_ATTRIBUTE]["N"]), dt.UTC)
    # SQS keeps a message at most 14 days: a redelivery always still finds its state item
    assert expires - dt.datetime.now(dt.UTC) > dt.timedelta(days=14, hours=1)
    ttl = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED" and ttl["AttributeName"] == ledger.TTL_ATTRIBUTE


def test_counters_of_earlier_releases_still_count(settings):
    ddb, table = aws.client(settings, "dynamodb"), settings.dynamodb_table_name
    # GIVEN the one counter item an earlier release kept
    ddb.put_item(
        TableName=table,
        Item={"pk": {"S": keys.COUNTERS_PK}, "sk": {"S": "ALL"}, "files_received": {"N": "40"}},
    )
    # WHEN more files arrive, THEN the totals continue from it
    ledger.mark_file(ddb, table, "new-file", "received", {"files_received": 1})
    ledger.add_counters(ddb, table, {"dates_computed": 3})
    counted = ledger.read_counters(ddb, table)
    assert counted["files_received"] == 41 and counted["dates_computed"] == 3
