"""Version-conditioned single-item writes, sent in parallel, retried in rounds.

Every put is `attribute_not_exists(pk) OR version <= :v` and every delete
`attribute_not_exists(pk) OR version < :v`: DynamoDB itself refuses to let an older result
replace or remove a newer item, whatever the lease says. (BatchWriteItem cannot carry a
condition and TransactWriteItems copies the whole table per action on the emulator, see
docs/writer.md; parallel conditional writes keep the guarantee at a fraction of the cost.)

A write that fails with throttling or a transient error is sent again in the next round,
after an exponential backoff with full jitter; a write refused by its condition means a newer
version got there first: the apply stops with StaleResult.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import structlog
from botocore.exceptions import ClientError

from playcount.core.errors import StaleResult, TransientError
from playcount.writer.retry import Backoff, error_code, is_transient

log = structlog.get_logger(__name__)

PUT_CONDITION = "attribute_not_exists(pk) OR version <= :v"
DELETE_CONDITION = "attribute_not_exists(pk) OR version < :v"


@dataclass(frozen=True)
class Write:
    """One conditional write: a put of `item` (wire format) or, without one, a delete of `key`."""

    key: tuple[str, str]
    item: dict[str, Any] | None = None

    @property
    def is_put(self) -> bool:
        return self.item is not None


@dataclass
class Tally:
    puts: int = 0
    deletes: int = 0
    requests: int = 0  # HTTP requests, botocore's own retries included
    retried: int = 0  # writes sent again in a later round
    transient_errors: int = 0  # writes refused by throttling or a transient error


@dataclass(frozen=True)
class _Result:
    write: Write
    attempts: int
    error: BaseException | None = None


def _send(ddb: Any, table: str, version: int, write: Write, guard: Callable[[], None]) -> _Result:
    guard()
    values = {":v": {"N": str(version)}}
    try:
        if write.item is not None:
            response = ddb.put_item(
                TableName=table, Item=write.item, ConditionExpression=PUT_CONDITION, ExpressionAttributeValues=values
            )
        else:
            pk, sk = write.key
            response = ddb.delete_item(
                TableName=table,
                Key={"pk": {"S": pk}, "sk": {"S": sk}},
                ConditionExpression=DELETE_CONDITION,
                ExpressionAttributeValues=values,
            )
    except ClientError as exc:
        return _Result(write, 1 + exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0), exc)
    except Exception as exc:  # connection errors after botocore's retries: decided by the caller
        return _Result(write, 1, exc)
    return _Result(write, 1 + response.get("ResponseMetadata", {}).get("RetryAttempts", 0))


def write_all(
    ddb: Any,
    table: str,
    version: int,
    writes: Iterable[Write],
    *,
    pool: Executor,
    backoff: Backoff,
    guard: Callable[[], None] = lambda: None,
) -> Tally:
    """Apply every write conditioned on `version`; all of them succeed or this raises.

    StaleResult: a condition refused a write (a newer version is stored).
    TransientError: writes still failing transiently after `backoff.rounds` rounds.
    """
    tally = Tally()
    todo = list(writes)
    for attempt in range(backoff.rounds + 1):
        if attempt:
            backoff.wait(attempt - 1)
            tally.retried += len(todo)
        results = list(pool.map(lambda w: _send(ddb, table, version, w, guard), todo))
        todo = []
        last_error: BaseException | None = None
        for r in results:
            tally.requests += r.attempts
            if r.error is None:
                if r.write.is_put:
                    tally.puts += 1
                else:
                    tally.deletes += 1
                continue
            code = error_code(r.error)
            if code == "ConditionalCheckFailedException":
                raise StaleResult(f"a newer version than {version} holds {r.write.key}") from r.error
            if not is_transient(r.error):
                raise r.error
            tally.transient_errors += 1
            last_error = r.error
            todo.append(r.write)
        if not todo:
            return tally
        log.info(
            "writes.retrying", writes=len(todo), round=attempt + 1, error=error_code(last_error) or repr(last_error)
        )
    raise TransientError(f"{len(todo)} writes still failing after {backoff.rounds} retry rounds")
