"""Which DynamoDB failures are worth retrying, and how long to wait: exponential, full jitter.

botocore already retries each request: the writer's client uses "standard" mode, up to 8
retries (9 attempts) with exponential backoff and jitter (`config.dynamodb_client`). This is
the writer's second layer: items whose request still failed with throttling or a transient
error are sent again in a later round, after a wait from the core retry policy
(`playcount.core.retrying`), so a burst of throttling delays an apply but never drops an item.
When the rounds are used up the whole message fails and SQS redelivers it (and after the
redrive count, moves it to the DLQ).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError
from tenacity import Retrying

from playcount.core import retrying

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
    """The writer's retry rounds: round n+1 waits uniform(0, min(cap, base * 2**n)) s (full jitter).

    `sleep` and `rng` are injectable, so tests run fast and deterministically.
    """

    base: float = 0.05
    cap: float = 2.0
    rounds: int = 8
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    rng: random.Random = field(default_factory=random.Random, compare=False)

    @property
    def jitter(self) -> retrying.Jitter:
        return retrying.Jitter(self.base, self.cap, rng=self.rng)

    def ceiling(self, n: int) -> float:
        """The longest wait before retry round n + 1."""
        return self.jitter.ceiling(n)

    def policy(
        self,
        retry_on: Callable[[BaseException], bool],
        *,
        describe: Callable[[BaseException], dict[str, Any]] | None = None,
        **context: Any,
    ) -> Retrying:
        """The core policy with these figures: the first try and `rounds` more, logged as `writes.retrying`."""
        return retrying.retrying(
            event="writes.retrying",
            retry_on=retry_on,
            attempts=self.rounds + 1,
            base=self.base,
            cap=self.cap,
            sleep=self.sleep,
            rng=self.rng,
            describe=describe,
            **context,
        )
