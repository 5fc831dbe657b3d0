"""The names of every AWS resource Playcount uses, defined once.

The embedded bootstrap, the docker-compose bootstrap and the CloudFormation template all
derive their names from here (a test checks the template agrees).
"""

from __future__ import annotations

from dataclasses import dataclass

from playcount.core.config import Settings

S3_EVENTS = "s3-events"
VALIDATED = "validated"
RESULTS = "kpi-results"
STAGES = (S3_EVENTS, VALIDATED, RESULTS)
DLQ_SUFFIX = "-dlq"

NOTIFIED_SUFFIXES = (".csv", ".csv.gz")


@dataclass(frozen=True)
class QueueSpec:
    stage: str
    name: str
    dlq_name: str


@dataclass(frozen=True)
class Resources:
    bucket: str
    table: str
    queues: tuple[QueueSpec, ...]
    notified_prefixes: tuple[str, ...]

    def queue(self, stage: str) -> QueueSpec:
        for q in self.queues:
            if q.stage == stage:
                return q
        raise KeyError(stage)


def resources(settings: Settings) -> Resources:
    queues = tuple(
        QueueSpec(stage, settings.queue_name(stage), settings.queue_name(stage) + DLQ_SUFFIX) for stage in STAGES
    )
    return Resources(
        bucket=settings.s3_bucket,
        table=settings.dynamodb_table_name,
        queues=queues,
        notified_prefixes=(settings.s3_raw_data_prefix, settings.s3_metadata_prefix),
    )
