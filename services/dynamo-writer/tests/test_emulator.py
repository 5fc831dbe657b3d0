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
    # `playcount.cli.emulator.serialize_dynamodb` is what makes this hold)
    assert doubles == []
