"""Writer settings: the shared settings, plus how one writer process applies results."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from playcount.core import aws
from playcount.core.config import Settings
from playcount.writer.retry import Backoff

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient


class WriterSettings(Settings):
    # a writer handed an old result applies the date's newest result object instead (see docs/writer.md)
    writer_apply_newest: bool = True


def dynamodb_client(settings: Settings) -> DynamoDBClient:
    """The writer's DynamoDB client: botocore's "standard" retries (up to 8 per request, backoff with jitter).

    Not "adaptive": after one burst of throttling, adaptive mode rate-limits the whole client
    (every thread) for a long while; measured here, a burst of 12 throttled writes stretched a
    64-item apply from 1 s to 28 s. The writer paces itself instead: throttled writes wait
    out a jittered backoff in `writes` while the others go on.
    """
    return aws.client(settings, "dynamodb", retry_mode="standard")


@dataclass(frozen=True)
class WriterOptions:
    """How one writer process applies results.

    lease_seconds: how long a crashed writer keeps a date busy (renewed while working).
    claim_wait_seconds: how long to wait for a busy date before the message is retried later.
    parallelism: conditional writes in flight at once (shared by the messages in hand).
    retry_rounds, backoff_base_seconds, backoff_cap_seconds: the second retry layer over
      botocore's, for writes still throttled (exponential backoff with full jitter).
    apply_newest: a message whose date already has a newer result object applies that one
      (WRITER_APPLY_NEWEST), so a writer behind a burst of recomputations catches up at once.
    keep_results: result objects of a date kept after an apply (the applied one and the ones
      before it); older ones are deleted, and S3's lifecycle rule expires what is left over.
    """

    lease_seconds: float = 30.0
    claim_wait_seconds: float = 10.0
    parallelism: int = 16
    retry_rounds: int = 8
    backoff_base_seconds: float = 0.05
    backoff_cap_seconds: float = 2.0
    apply_newest: bool = True
    keep_results: int = 2

    def backoff(self) -> Backoff:
        return Backoff(base=self.backoff_base_seconds, cap=self.backoff_cap_seconds, rounds=self.retry_rounds)

    def replace(self, **changes: Any) -> WriterOptions:
        return dataclasses.replace(self, **changes)


__all__ = ["WriterOptions", "WriterSettings", "dynamodb_client"]
