"""A lease per date in the table, so writers of the same date take turns.

Different dates never wait for each other. A crashed holder's lease expires after
`lease_seconds`; every KPI write is also version-conditioned, so even an expired lease
cannot let an older result overwrite a newer item.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from playcount.core import keys
from playcount.core.errors import TransientError


@contextlib.contextmanager
def date_lease(ddb: Any, table: str, day: dt.date, *, lease_seconds: int, wait_seconds: float) -> Iterator[str]:
    owner = uuid.uuid4().hex
    key = {"pk": {"S": keys.day_pk(day)}, "sk": {"S": keys.LOCK_SK}}
    deadline = time.monotonic() + wait_seconds
    delay = 0.02
    while True:
        now = time.time()
        try:
            ddb.put_item(
                TableName=table,
                Item={**key, "owner": {"S": owner}, "expires": {"N": f"{now + lease_seconds:.3f}"}},
                ConditionExpression="attribute_not_exists(pk) OR expires < :now",
                ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}},
            )
            break
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            if time.monotonic() > deadline:
                raise TransientError(f"date {day} is locked by another writer") from exc
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 0.5)
    try:
        yield owner
    finally:
        with contextlib.suppress(ClientError):
            ddb.delete_item(
                TableName=table,
                Key=key,
                ConditionExpression="#o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":me": {"S": owner}},
            )
