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
from typing import TYPE_CHECKING, Any

import structlog
from botocore.exceptions import ClientError

from playcount.core.errors import StaleResult, TransientError
from playcount.writer.retry import Backoff, error_code, is_transient

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient

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


def _send(ddb: DynamoDBClient, table: str, version: int, write: Write, guard: Callable[[], None]) -> _Result:
    try:
        guard()
    except Exception as exc:  # the lease is gone: this write is never sent
        return _Result(write, 0, exc)
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


def _settle(results: list[_Result], version: int, tally: Tally) -> tuple[list[Write], BaseException | None]:
    """Count a round; return the writes to send again and the first error that ends the apply."""
    again: list[Write] = []
    fatal: BaseException | None = None
    for r in results:
        tally.requests += r.attempts
        if r.error is None:
            if r.write.is_put:
                tally.puts += 1
            else:
                tally.deletes += 1
        elif error_code(r.error) == "ConditionalCheckFailedException":
            if fatal is None:
                fatal = StaleResult(f"a newer version than {version} holds {r.write.key}")
                fatal.__cause__ = r.error
        elif is_transient(r.error):
            tally.transient_errors += 1
            again.append(r.write)
        elif fatal is None:
            fatal = r.error
    return again, fatal


def write_all(
    ddb: DynamoDBClient,
    table: str,
    version: int,
    writes: Iterable[Write],
    *,
    pool: Executor,
    backoff: Backoff,
    guard: Callable[[], None] = lambda: None,
) -> Tally:
    """Apply every write conditioned on `version`; all of them succeed or this raises.

    A round always runs to its end before anything is raised, so once this returns or raises
    no write of it is still on its way (what `take_back` relies on).
    StaleResult: a condition refused a write (a newer version is stored).
    TransientError: writes still failing transiently after `backoff.rounds` rounds.
    Whatever `guard` raises (it is called before each write): the lease is lost.
    """
    tally = Tally()
    todo = list(writes)
    try:
        for attempt in backoff.policy(
            lambda exc: isinstance(exc, _StillFailing),
            describe=lambda exc: {"writes": getattr(exc, "writes", None)},
            version=version,
        ):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    tally.retried += len(todo)
                results = list(pool.map(lambda w: _send(ddb, table, version, w, guard), todo))
                todo, fatal = _settle(results, version, tally)
                if fatal is not None:
                    raise fatal
                if todo:
                    raise _StillFailing(len(todo))
    except _StillFailing:
        raise TransientError(f"{len(todo)} writes still failing after {backoff.rounds} retry rounds") from None
    return tally


class _StillFailing(Exception):
    """Writes of a round refused by throttling or a transient error: sent again in the next round."""

    def __init__(self, writes: int) -> None:
        super().__init__(f"{writes} writes refused by throttling or a transient error")
        self.writes = writes


def take_back(ddb: DynamoDBClient, table: str, version: int, keys: Iterable[tuple[str, str]], *, pool: Executor) -> int:
    """Delete the items under `keys` that still carry exactly `version`; returns how many.

    For a writer that cannot finish (a newer version got there, or its lease was taken): what
    it put is either overwritten by the newer writer or not part of the newer result, so
    removing its own version's items never touches anyone else's data. Best effort: an item
    left behind is what a crash would leave.
    """

    def one(key: tuple[str, str]) -> bool:
        try:
            ddb.delete_item(
                TableName=table,
                Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}},
                ConditionExpression="version = :v",
                ExpressionAttributeValues={":v": {"N": str(version)}},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                log.warning("writes.take_back_failed", key=list(key), error=error_code(exc))
            return False
        except Exception as exc:
            log.warning("writes.take_back_failed", key=list(key), error=repr(exc))
            return False
        return True

    return sum(pool.map(one, list(keys)))
