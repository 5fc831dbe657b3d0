"""Versions of computations: one atomic counter in DynamoDB, shared by every runner.

A computation takes its version *before* it reads the lake (metadata and events). The counter
is linearizable, so a higher version was taken later than a lower one, whichever runner took
it and whatever its clock says; and a file's own "validated" message is handled only once the
file is durable, by a computation whose version is taken after that. Hence the invariant the
writer's "highest version wins" relies on: the highest version of a date has seen every file
that was durable in the lake before that version was taken.

Clocks play no part, except once: the counter starts from the current time in microseconds
(`if_not_exists`), so the first version stays above those of the wall-clock scheme it replaces
and an existing table keeps working. One counter for all dates costs one request per batch
(not one per date); its load is one write per batch, far below a DynamoDB item's limits.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from playcount.core import keys

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient


def take(ddb: DynamoDBClient, table: str, now: float | None = None) -> int:
    """The next version: one atomic increment of the shared counter."""
    start = int((time.time() if now is None else now) * 1_000_000)
    response = ddb.update_item(
        TableName=table,
        Key={"pk": {"S": keys.VERSIONS_PK}, "sk": {"S": keys.VERSIONS_SK}},
        UpdateExpression="SET #v = if_not_exists(#v, :start) + :one",
        ExpressionAttributeNames={"#v": "version"},
        ExpressionAttributeValues={":start": {"N": str(start)}, ":one": {"N": "1"}},
        ReturnValues="UPDATED_NEW",
    )
    return int(response["Attributes"]["version"]["N"])
