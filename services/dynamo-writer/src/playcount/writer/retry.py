"""Which DynamoDB failures are worth retrying, and how long to wait: exponential, full jitter.

botocore already retries each request (adaptive mode, 8 attempts, see `playcount.core.aws`);
this is the writer's second layer: items whose request still failed with throttling or a
transient error are sent again in a later round, so a burst of throttling delays an apply
but never drops an item. When the rounds are used up the whole message fails and SQS
redelivers it (and after the redrive count, moves it to the DLQ).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

THROTTLING = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
    }
)
TRANSIENT = THROTTLING | {
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",  # the item is inside someone else's transaction right now
}


def error_code(exc: BaseException | None) -> str | None:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return None


def is_transient(exc: BaseException) -> bool:
    """Throttling, a server-side hiccup, or no answer at all (connection reset, timeout)."""
    if isinstance(exc, ClientError):
        return error_code(exc) in TRANSIENT
    return isinstance(exc, ConnectionError | HTTPClientError)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: round n waits uniform(0, min(cap, base * 2**n)) s."""

    base: float = 0.05
    cap: float = 2.0
    rounds: int = 8
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def ceiling(self, attempt: int) -> float:
        return min(self.cap, self.base * 2 ** min(attempt, 30))

    def wait(self, attempt: int) -> float:
        delay = self.rng.uniform(0, self.ceiling(attempt))
        self.sleep(delay)
        return delay
