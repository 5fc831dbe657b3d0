"""What the writer's guarantees assume of DynamoDB, checked on the emulator the tests use."""

from __future__ import annotations

import threading

from botocore.exceptions import ClientError

from playcount.core import aws


def test_a_conditional_write_is_atomic_under_concurrent_writers(settings, table):
    # GIVEN eight clients racing for one item, 60 times, all released at once
    clients = [aws.client(settings, "dynamodb") for _ in range(8)]
    doubles = []
    for trial in range(60):
        winners: list[int] = []
        barrier = threading.Barrier(len(clients))

        def race(i: int, trial: int = trial, winners: list[int] = winners, barrier=barrier) -> None:
            barrier.wait()
            try:
                clients[i].update_item(
                    TableName=table,
                    Key={"pk": {"S": f"RACE#{trial}"}, "sk": {"S": "HEAD"}},
                    UpdateExpression="SET lease_owner = :me",
                    ConditionExpression="attribute_not_exists(lease_owner)",
                    ExpressionAttributeValues={":me": {"S": str(i)}},
                )
                winners.append(i)
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"

        threads = [threading.Thread(target=race, args=(i,)) for i in range(len(clients))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if len(winners) != 1:
            doubles.append(winners)

    # THEN each time exactly one wins, as on DynamoDB (plain moto lets two win now and then;
    # `playcount.devstack.emulator.serialize_dynamodb` is what makes this hold)
    assert doubles == []


def _key(pk: str) -> dict:
    return {"pk": {"S": pk}, "sk": {"S": "X"}}


def _transact(ddb, table: str, *, fail: bool) -> None:
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": table, "Item": {**_key("TX#new"), "v": {"N": "1"}}}},
            {"Update": {"TableName": table, "Key": _key("TX#counted"), "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"Delete": {"TableName": table, "Key": _key("TX#gone")}},
            {"ConditionCheck": {"TableName": table, "Key": _key("TX#guard"),
                                "ConditionExpression": "attribute_exists(pk)" if fail else "attribute_not_exists(pk)"}},
        ]
    )  # fmt: skip


def _state(ddb, table: str) -> dict[str, dict | None]:
    return {pk: ddb.get_item(TableName=table, Key=_key(pk)).get("Item") for pk in ("TX#new", "TX#counted", "TX#gone")}


def test_a_transaction_is_all_or_nothing_on_the_emulator(ddb, table):
    # GIVEN a table with other items (the emulator's transactions back up only the items they touch)
    for i in range(50):
        ddb.put_item(TableName=table, Item={**_key(f"OTHER#{i}"), "v": {"N": str(i)}})
    ddb.put_item(TableName=table, Item={**_key("TX#counted"), "n": {"N": "5"}})
    ddb.put_item(TableName=table, Item={**_key("TX#gone"), "v": {"S": "kept"}})
    before = _state(ddb, table)

    # WHEN a transaction's last action fails its condition
    try:
        _transact(ddb, table, fail=True)
        raise AssertionError("the transaction should have been cancelled")
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "TransactionCanceledException"

    # THEN none of its writes happened: the put, the increment and the delete are all undone
    assert _state(ddb, table) == before
    assert before["TX#new"] is None and before["TX#gone"] is not None

    # AND the same transaction without the failing condition applies every action
    _transact(ddb, table, fail=False)
    after = _state(ddb, table)
    assert after["TX#new"] == {**_key("TX#new"), "v": {"N": "1"}}
    assert after["TX#counted"]["n"] == {"N": "6"}
    assert after["TX#gone"] is None
    others = [ddb.get_item(TableName=table, Key=_key(f"OTHER#{i}"))["Item"]["v"] for i in range(50)]
    assert others == [{"N": str(i)} for i in range(50)]


def _query_all(ddb, table: str, **kwargs) -> list[str]:
    """Every sort key a Query returns, following its pages."""
    sks, start = [], {}
    while True:
        page = ddb.query(TableName=table, **kwargs, **start)
        sks += [item["sk"]["S"] for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return sks
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def test_a_query_reads_its_partition_in_key_order_with_pages_and_conditions(ddb, table):
    # GIVEN three partitions whose sort keys were written out of order, with neighbours that
    # share a prefix (the emulator reads only the named partition of the table)
    for pk in ("Q#a", "Q#b", "Q#ab"):
        for i in (7, 3, 11, 0, 5, 9, 1, 10, 2, 8, 4, 6):
            ddb.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": f"DATE#{i:02d}"}, "p": {"S": pk}})
    mine = [f"DATE#{i:02d}" for i in range(12)]

    def q(condition: str, values: dict, **kwargs) -> list[str]:
        return _query_all(ddb, table, KeyConditionExpression=condition, ExpressionAttributeValues=values, **kwargs)

    # THEN each Query returns that partition's items only, ordered, paged, and conditioned
    assert q("pk = :p", {":p": {"S": "Q#a"}}) == mine
    assert q("pk = :p", {":p": {"S": "Q#a"}}, Limit=5) == mine
    assert q("pk = :p", {":p": {"S": "Q#a"}}, ScanIndexForward=False, Limit=4) == mine[::-1]
    between = {":p": {"S": "Q#ab"}, ":lo": {"S": "DATE#03"}, ":hi": {"S": "DATE#07"}}
    assert q("pk = :p AND sk BETWEEN :lo AND :hi", between) == mine[3:8]
    assert q("pk = :p AND begins_with(sk, :d)", {":p": {"S": "Q#b"}, ":d": {"S": "DATE#1"}}) == mine[10:]
    filtered = q("pk = :p", {":p": {"S": "Q#b"}, ":v": {"S": "Q#b"}}, FilterExpression="p = :v")
    assert filtered == mine
    assert q("pk = :p", {":p": {"S": "Q#none"}}) == []
