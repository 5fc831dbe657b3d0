"""One micro-batch of "file validated" messages: recompute every date they touched, exactly.

The version of a computation comes from one atomic counter shared by every runner, taken
*before* the lake is read (metadata and events): see `playcount.runner.versions`. The lake only
grows and metadata only changes forward, so a later version always saw at least the data of an
earlier one, whichever runner took it and whatever its clock says. Results go to
`transformed-data/` first, then one message per date to the writer, then the ledger marks
the files.
"""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from playcount.core import lake, ledger, metrics
from playcount.core.consumer import Outcome, Outcomes, SqsMessage
from playcount.core.errors import PoisonMessage
from playcount.core.kpis import DayKpis
from playcount.core.messages import FileValidated, KpiResultReady, SourceFile, parse_model
from playcount.runner import mirror, versions
from playcount.runner.catalog import Catalog
from playcount.runner.compute import Computed, Inputs, compute
from playcount.runner.config import RunnerSettings

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_s3 import S3Client
    from types_boto3_sqs import SQSClient

log = structlog.get_logger(__name__)


@dataclass
class Runner:
    settings: RunnerSettings
    spark: Any
    s3: S3Client
    sqs: SQSClient
    ddb: DynamoDBClient
    fs: Any
    results_queue_url: str
    mirror_dates: int = 64
    _catalog: Catalog | None = None
    last_job: Computed | None = None
    _mirror: mirror.LakeMirror | None = None
    _io: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(8, thread_name_prefix="emit"))

    def now(self) -> float:
        """This runner's wall clock, in seconds (skewed by RUNNER_CLOCK_OFFSET_SECONDS in tests)."""
        return time.time() + self.settings.runner_clock_offset_seconds

    def next_version(self) -> int:
        return versions.take(self.ddb, self.settings.dynamodb_table_name, self.now())

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = Catalog(self.settings, self.s3, Path(self.settings.work_dir) / "runner")
        return self._catalog

    def handle_batch(self, messages: list[SqsMessage]) -> Outcomes:
        """Parse every message (poison ones fail alone), then recompute the union of their dates.

        The parsed messages are DONE once the recompute returned; a failing recompute raises,
        and the consumer retries the whole batch.
        """
        outcomes: Outcomes = {}
        parsed: list[FileValidated] = []
        for m in messages:
            try:
                parsed.append(parse_model(FileValidated, m.body))
                outcomes[m.message_id] = Outcome.DONE
            except PoisonMessage as exc:
                log.warning("message.poison", message_id=m.message_id, reason=str(exc))
                outcomes[m.message_id] = Outcome.RETRY_NOW
        if parsed:
            self.recompute(parsed)
        return outcomes

    def recompute(self, files: list[FileValidated]) -> list[DayKpis]:
        dates = sorted({d for f in files for d in f.dates})
        version = self.next_version()
        computed_at = dt.datetime.fromtimestamp(self.now(), dt.UTC)
        started = time.perf_counter()
        metadata = self.catalog.current()
        inputs = self._inputs(dates)
        staged = time.perf_counter()
        self.last_job = job = compute(self.spark, inputs, metadata, dates, version, computed_at)
        results = job.days
        computed = time.perf_counter()
        list(self._io.map(lambda k: self._emit(k, [f for f in files if k.date in f.dates]), results))
        metrics.DATES.labels("runner").inc(len(results))
        list(self._io.map(self._mark, files))
        ledger.add_counters(self.ddb, self.settings.dynamodb_table_name, {"dates_computed": len(results)})
        log.info(
            "batch.recomputed",
            files=len(files),
            dates=[d.isoformat() for d in dates],
            version=version,
            input_mb=round(inputs.input_bytes / 2**20, 1),
            plan=job.plan.layout if job.plan else None,
            partitions=job.plan.partitions if job.plan else 0,
            songs_taking_part=job.taking_part.song_rows,
            users_taking_part=job.taking_part.user_rows,
            stage_s=round(staged - started, 3),
            compute_s=round(computed - staged, 3),
            emit_s=round(time.perf_counter() - computed, 3),
        )
        return results

    def close(self) -> None:
        self._io.shutdown(wait=True)
        if self._mirror is not None:
            self._mirror.close()
        if self._catalog is not None:
            self._catalog.close()

    def _inputs(self, dates: list[dt.date]) -> Inputs:
        if self.settings.lake_read_mode == "s3a":
            return mirror.s3a_inputs(self.settings, self.s3, dates)
        if self._mirror is None:
            work = Path(self.settings.work_dir) / "runner"
            self._mirror = mirror.LakeMirror(self.settings, self.s3, work, keep_dates=self.mirror_dates)
        return self._mirror.inputs(dates)

    def _emit(self, kpis: DayKpis, files: list[FileValidated]) -> None:
        key = lake.result_key(self.settings, kpis.date, kpis.version)
        self.s3.put_object(
            Bucket=self.settings.s3_bucket,
            Key=key,
            Body=kpis.model_dump_json().encode(),
            ContentType="application/json",
        )
        message = KpiResultReady(
            date=kpis.date,
            version=kpis.version,
            result_key=key,
            computed_at=kpis.computed_at,
            files=[SourceFile(file_id=f.file_id, uploaded_at=f.uploaded_at) for f in files],
        )
        self.sqs.send_message(QueueUrl=self.results_queue_url, MessageBody=message.model_dump_json())

    def _mark(self, f: FileValidated) -> None:
        ledger.mark_file(
            self.ddb,
            self.settings.dynamodb_table_name,
            f.file_id,
            f"computed-{f.kind}",
            {"files_processed": 1} if f.kind == "streams" else {},
        )
