"""One "KPIs ready" message: load the result, apply it, record freshness and counters."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import structlog
from botocore.exceptions import ClientError

from playcount.core import ledger, metrics
from playcount.core.config import Settings
from playcount.core.errors import PoisonMessage
from playcount.core.kpis import DayKpis
from playcount.core.messages import KpiResultReady
from playcount.writer.apply import Applied, apply
from playcount.writer.config import LOCK_LEASE_SECONDS, LOCK_WAIT_SECONDS

log = structlog.get_logger(__name__)


@dataclass
class Writer:
    settings: Settings
    s3: Any
    ddb: Any

    def handle(self, message: KpiResultReady) -> Applied:
        kpis = self._load(message)
        table = self.settings.dynamodb_table_name
        applied = apply(self.ddb, table, kpis, lease_seconds=LOCK_LEASE_SECONDS, wait_seconds=LOCK_WAIT_SECONDS)
        metrics.DATES.labels("writer").inc()
        ledger.mark_file(self.ddb, table, f"result-{kpis.date}-v{kpis.version}", "written", {"dates_written": 1})
        now = dt.datetime.now(dt.UTC)
        for f in message.files:
            if f.uploaded_at is not None:
                lag = (now - f.uploaded_at).total_seconds()
                metrics.FRESHNESS.observe(lag)
                ledger.record_freshness(self.ddb, table, lag, f.file_id)
        log.info(
            "result.applied",
            date=str(applied.date),
            version=applied.version,
            written=applied.written,
            deleted=applied.deleted,
            requests=applied.requests,
        )
        return applied

    def _load(self, message: KpiResultReady) -> DayKpis:
        try:
            body = self.s3.get_object(Bucket=self.settings.s3_bucket, Key=message.result_key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                raise PoisonMessage(f"result object {message.result_key} does not exist") from exc
            raise
        kpis = DayKpis.model_validate_json(body)
        if kpis.date != message.date or kpis.version != message.version:
            raise PoisonMessage(f"result object {message.result_key} does not match its message")
        return kpis
