"""The writer's side of a date's HEAD item (`playcount.core.head`): claim, renew, commit.

One conditional UpdateItem both takes the lease and reads the state (the old image), so a
replayed or stale message costs one request and writes nothing. Writers of the same date
take turns; different dates never wait for each other. A crashed holder's lease expires
after `lease_seconds`. The holder renews it while it works and never sends a write once
it cannot prove the lease is still its own (`Claim.ensure`); independently of the lease,
every KPI write is version-conditioned, so an older result can never replace a newer item.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from playcount.core import retrying
from playcount.core.errors import StaleResult, TransientError
from playcount.core.head import (
    APPLYING,
    GENRES,
    LEASE_EXPIRES,
    LEASE_OWNER,
    MANIFEST,
    PENDING_GENRES,
    VERSION,
    head_key,
)
from playcount.core.kpis import DayKpis
from playcount.writer import manifest
from playcount.writer.manifest import Key

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient

_NAMES = {
    "#version": VERSION,
    "#owner": LEASE_OWNER,
    "#expires": LEASE_EXPIRES,
    "#applying": APPLYING,
    "#pending": PENDING_GENRES,
}


# a busy date is tried again after uniform(0, min(1 s, 40 ms * 2**n)): on average the 20 ms
# doubling to 0.5 s the writer always waited, now with full jitter
CLAIM_BASE_SECONDS = 0.04
CLAIM_CAP_SECONDS = 1.0


class LeaseLost(TransientError):
    """Another writer took the date while this one was applying: stop, and let SQS redeliver."""


def _strings(value: dict[str, Any] | None) -> frozenset[str]:
    """A string set, or a list of strings (how the first writer stored `genres`)."""
    if not value:
        return frozenset()
    return frozenset(value.get("SS", [])) | frozenset(v["S"] for v in value.get("L", []))


@dataclass(frozen=True)
class Prior:
    """What the date held when the lease was taken."""

    version: int | None
    genres: frozenset[str]
    manifest: frozenset[Key] | None
    interrupted: bool
    pending_genres: frozenset[str]

    @classmethod
    def from_image(cls, image: dict[str, Any] | None) -> Prior:
        image = image or {}
        blob = image.get(MANIFEST, {}).get("B")
        return cls(
            version=int(image[VERSION]["N"]) if VERSION in image else None,
            genres=_strings(image.get(GENRES)),
            manifest=manifest.decode(blob) if blob is not None else None,
            interrupted=APPLYING in image,
            pending_genres=_strings(image.get(PENDING_GENRES)),
        )


@dataclass
class Claim:
    """The lease on one date, held by this writer while it applies one version."""

    ddb: DynamoDBClient
    table: str
    day: dt.date
    version: int
    owner: str
    lease_seconds: float
    prior: Prior
    valid_until: float  # time.monotonic() by which the lease has surely expired
    requests: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def ensure(self) -> None:
        """Renew the lease when half of it is gone; raise LeaseLost if it is no longer ours.

        Called before every write, so a writer that was paused past its lease (and may have
        been replaced by another) stops instead of writing.
        """
        if self.valid_until - time.monotonic() > self.lease_seconds / 2:
            return
        with self._lock:
            if self.valid_until - time.monotonic() > self.lease_seconds / 2:
                return
            sent = time.monotonic()
            try:
                self._update(
                    "SET #expires = :expires",
                    {":expires": {"N": f"{time.time() + self.lease_seconds:.3f}"}},
                    {"#expires": LEASE_EXPIRES},
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    raise LeaseLost(f"{self.day}: lost the lease while applying v{self.version}") from exc
                raise
            self.valid_until = sent + self.lease_seconds

    def release(self) -> None:
        """Give the lease back, keeping the write-ahead intent (the apply did not finish)."""
        # lost already, or unreachable: either way the lease expires on its own
        with contextlib.suppress(ClientError, BotoCoreError):
            self._update("REMOVE #owner, #expires", {}, {"#expires": LEASE_EXPIRES})

    def commit(self, kpis: DayKpis, stored: set[Key]) -> None:
        """Record `kpis` as the date's applied version and release the lease, in one write."""
        values: dict[str, Any] = {
            ":v": {"N": str(kpis.version)},
            ":computed_at": {"S": kpis.computed_at.isoformat()},
            ":date": {"S": kpis.date.isoformat()},
            ":events": {"N": str(kpis.events)},
        }
        sets = ["#version = :v", "computed_at = :computed_at", "#date = :date", "events = :events"]
        removes = ["#owner", "#expires", "#applying", "#pending"]
        genres = sorted({g.genre for g in kpis.genres})
        if genres:
            sets.append(f"{GENRES} = :genres")
            values[":genres"] = {"SS": genres}
        else:
            removes.append(GENRES)
        blob = manifest.encode(stored)
        if blob is not None:
            sets.append(f"{MANIFEST} = :manifest")
            values[":manifest"] = {"B": blob}
        else:
            removes.append(MANIFEST)
        try:
            self._update(
                f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
                values,
                {n: _NAMES[n] for n in ("#version", "#applying", "#pending", "#expires")} | {"#date": "date"},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                # our items are written, but another writer holds the date now: let SQS
                # redeliver; the replay is cheap and converges on the newest version
                raise LeaseLost(f"{self.day}: lost the lease before committing v{self.version}") from exc
            raise

    def _update(self, expression: str, values: dict[str, Any], names: dict[str, str]) -> None:
        self.requests += 1
        self.ddb.update_item(
            TableName=self.table,
            Key=head_key(self.day),
            UpdateExpression=expression,
            ConditionExpression="#owner = :me",
            ExpressionAttributeNames={"#owner": LEASE_OWNER, **names},
            ExpressionAttributeValues={":me": {"S": self.owner}, **values},
        )


def claim(ddb: DynamoDBClient, table: str, kpis: DayKpis, *, lease_seconds: float, wait_seconds: float) -> Claim | None:
    """Take the lease on `kpis.date` to apply `kpis.version`, and register the intent to write.

    Returns None when exactly this version is already applied (a replay); raises StaleResult
    when a newer one is, and TransientError when another writer kept the date busy for
    `wait_seconds` (tried again meanwhile with the core retry policy, `lease.busy` per wait).
    """
    owner = uuid.uuid4().hex
    requests = 0
    try:
        for attempt in retrying.retrying(
            event="lease.busy",
            retry_on=lambda exc: isinstance(exc, _Busy),
            deadline=wait_seconds,
            base=CLAIM_BASE_SECONDS,
            cap=CLAIM_CAP_SECONDS,
            describe=lambda exc: {"reason": str(exc)},
            date=kpis.date.isoformat(),
            version=kpis.version,
        ):
            with attempt:
                requests += 1
                return _take(ddb, table, kpis, owner, lease_seconds, requests)
    except _Busy as exc:
        raise TransientError(f"{kpis.date} is being applied by another writer") from exc.__cause__
    raise AssertionError("unreachable: the retries end by returning or raising")


class _Busy(Exception):
    """Another writer holds the date's lease (for an older version than ours): wait, then try again."""


def _take(
    ddb: DynamoDBClient, table: str, kpis: DayKpis, owner: str, lease_seconds: float, requests: int
) -> Claim | None:
    """One conditional UpdateItem taking the lease; None, StaleResult or _Busy when it is refused."""
    genres = sorted({g.genre for g in kpis.genres})
    sent = time.monotonic()
    now = time.time()
    values: dict[str, Any] = {
        ":me": {"S": owner},
        ":now": {"N": f"{now:.3f}"},
        ":expires": {"N": f"{now + lease_seconds:.3f}"},
        ":v": {"N": str(kpis.version)},
    }
    expression = "SET #owner = :me, #expires = :expires, #applying = :v"
    if genres:
        expression += " ADD #pending :genres"
        values[":genres"] = {"SS": genres}
    try:
        response = ddb.update_item(
            TableName=table,
            Key=head_key(kpis.date),
            UpdateExpression=expression,
            ConditionExpression=(
                "(attribute_not_exists(#owner) OR #expires < :now)"
                " AND (attribute_not_exists(#version) OR #version < :v)"
            ),
            ExpressionAttributeNames=_NAMES if genres else {k: v for k, v in _NAMES.items() if k != "#pending"},
            ExpressionAttributeValues=values,
            ReturnValues="ALL_OLD",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        # ReturnValuesOnConditionCheckFailure puts the item in the error response, which
        # botocore-stubs' ClientError response type does not declare (only Error, CancellationReasons...)
        current: dict[str, Any] | None = exc.response.get("Item") or _read(ddb, table, kpis.date)  # type: ignore[assignment]
        stored = int(current[VERSION]["N"]) if current and VERSION in current else 0
        if stored == kpis.version:
            return None
        if stored > kpis.version:
            raise StaleResult(f"{kpis.date}: stored version {stored} is newer than {kpis.version}") from exc
        raise _Busy(f"stored version {stored}, leased by another writer") from exc
    return Claim(
        ddb=ddb,
        table=table,
        day=kpis.date,
        version=kpis.version,
        owner=owner,
        lease_seconds=lease_seconds,
        prior=Prior.from_image(response.get("Attributes")),
        valid_until=sent + lease_seconds,
        requests=requests,
    )


def newer_than(ddb: DynamoDBClient, table: str, day: dt.date, version: int) -> bool:
    """Whether a version above `version` is applied to `day`, or being applied right now."""
    item = _read(ddb, table, day) or {}
    return any(int(item[a]["N"]) > version for a in (VERSION, APPLYING) if a in item)


def _read(ddb: DynamoDBClient, table: str, day: dt.date) -> dict[str, Any] | None:
    item: dict[str, Any] | None = ddb.get_item(TableName=table, Key=head_key(day), ConsistentRead=True).get("Item")
    return item
