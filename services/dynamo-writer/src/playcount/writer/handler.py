"""One "KPIs ready" message: load the result, apply it, record freshness and counters.

The runner stores every result object before it announces it, and a later version of a date
saw at least the data of an earlier one. So when the date already has a newer result object
than the message names, the writer applies that one instead (`apply_newest`): a writer behind
a burst of recomputations jumps to the newest result of each date, and the messages of the
versions in between are then replays that cost one request.
"""

from __future__ import annotations

import datetime as dt
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog
from botocore.exceptions import ClientError
from pydantic import ValidationError

from playcount.core import keys, lake, ledger, metrics
from playcount.core.config import Settings
from playcount.core.errors import PoisonMessage, StaleResult
from playcount.core.kpis import DayKpis
from playcount.core.messages import KpiResultReady
from playcount.core.s3 import is_missing
from playcount.writer import lease
from playcount.writer import metrics as writer_metrics
from playcount.writer.apply import Applied, apply
from playcount.writer.config import WriterOptions

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_s3 import S3Client

log = structlog.get_logger(__name__)


@dataclass
class Writer:
    """Applies results; its thread pool carries the conditional writes of every message in hand."""

    settings: Settings
    s3: S3Client
    ddb: DynamoDBClient
    options: WriterOptions = field(default_factory=WriterOptions)
    pool: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self.pool = ThreadPoolExecutor(self.options.parallelism, thread_name_prefix="writer")

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def handle(self, message: KpiResultReady) -> Applied:
        """Apply the message's result. PoisonMessage if it can never apply; StaleResult if superseded."""
        key, version = message.result_key, message.version
        if self.options.apply_newest:
            newest = self._newest_version(message.date)
            if newest > version:
                log.info("result.superseded", date=str(message.date), version=version, applying=newest)
                key, version = lake.result_key(self.settings, message.date, newest), newest
        kpis = self._load(key, message.date, version)
        table = self.settings.dynamodb_table_name
        try:
            applied = apply(self.ddb, table, kpis, options=self.options, pool=self.pool)
        except keys.KeyError_ as exc:
            raise PoisonMessage(f"result {message.result_key} holds a value that cannot be a key: {exc}") from exc
        # a replay still marks the state: the first delivery may have died right after applying
        # (marked per message: a message whose result was superseded is settled by the newer one)
        ledger.mark_file(self.ddb, table, f"result-{message.date}-v{message.version}", "written", {"dates_written": 1})
        if not applied.skipped:
            pruned = self._prune(applied.date, applied.version)
            if pruned:
                log.info("results.pruned", date=str(applied.date), deleted=pruned, kept=self.options.keep_results)
            metrics.DATES.labels("writer").inc()
            now = dt.datetime.now(dt.UTC)
            for f in message.files:
                if f.uploaded_at is not None:
                    lag = (now - f.uploaded_at).total_seconds()
                    writer_metrics.FRESHNESS.observe(lag)
                    ledger.record_freshness(self.ddb, table, lag, f.file_id)
        log.info(
            "result.applied",
            pid=os.getpid(),  # which of several competing writer processes applied it
            date=str(applied.date),
            version=applied.version,
            skipped=applied.skipped,
            written=applied.written,
            deleted=applied.deleted,
            requests=applied.requests,
            queried=applied.queried,
            retried=applied.retried,
            seconds=round(applied.seconds, 3),
        )
        return applied

    def _newest_version(self, day: dt.date) -> int:
        """The highest version among the date's stored result objects (0 when there is none).

        Result keys sort newest first (`lake.result_key`): one listing of one key.
        """
        prefix = lake.results_prefix(self.settings, day)
        listed = self.s3.list_objects_v2(Bucket=self.settings.s3_bucket, Prefix=f"{prefix}r", MaxKeys=1)
        return max((lake.result_version(o["Key"]) or 0 for o in listed.get("Contents", [])), default=0)

    def _prune(self, day: dt.date, applied: int) -> int:
        """Delete the date's result objects older than the last `keep_results` up to `applied`.

        A newer result (not applied yet) is never touched; a message of a pruned version is
        recognised as superseded when it comes back (`_load`). Returns how many were deleted.
        """
        prefix = f"{lake.results_prefix(self.settings, day)}r"
        listed = self.s3.list_objects_v2(Bucket=self.settings.s3_bucket, Prefix=prefix, MaxKeys=1000)
        keys_up_to = [o["Key"] for o in listed.get("Contents", []) if (lake.result_version(o["Key"]) or 0) <= applied]
        old = keys_up_to[self.options.keep_results :]
        if old:
            self.s3.delete_objects(
                Bucket=self.settings.s3_bucket, Delete={"Objects": [{"Key": k} for k in old], "Quiet": True}
            )
        return len(old)

    def _load(self, key: str, day: dt.date, version: int) -> DayKpis:
        try:
            body = self.s3.get_object(Bucket=self.settings.s3_bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if is_missing(exc):
                if lease.newer_than(self.ddb, self.settings.dynamodb_table_name, day, version):
                    raise StaleResult(f"result object {key} is gone, superseded by a newer version") from exc
                raise PoisonMessage(f"result object {key} does not exist") from exc
            raise
        try:
            kpis = DayKpis.model_validate_json(body)
        except ValidationError as exc:
            raise PoisonMessage(f"result object {key} is not a day's KPIs") from exc
        if kpis.date != day or kpis.version != version:
            raise PoisonMessage(f"result object {key} does not match its message")
        return kpis
