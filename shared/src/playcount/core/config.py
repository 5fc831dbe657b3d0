"""Settings for every Playcount process, read from the environment (or a dict in tests).

Settings come from `load_settings()`, never from module import, and refuse unsafe values.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EMBEDDED_ENDPOINT = "http://127.0.0.1:4566"


class Settings(BaseSettings):
    """One flat settings object; each field maps to the upper-case environment variable."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None

    s3_bucket: str = "music-streaming-data"
    s3_raw_data_prefix: str = "streams/"
    s3_metadata_prefix: str = "metadata/"
    s3_validated_prefix: str = "validated-data/"
    s3_transformed_prefix: str = "transformed-data/"
    s3_archive_prefix: str = "archive/"
    s3_rejected_prefix: str = "rejected/"
    s3_processing_metadata_prefix: str = "processing-metadata/"

    dynamodb_table_name: str = "music-streaming-kpis"

    sqs_queue_prefix: str = "playcount-"
    sqs_max_receive_count: int = Field(default=5, ge=1, le=1000)
    sqs_visibility_timeout: int = Field(default=60, ge=5, le=43200)
    sqs_wait_seconds: int = Field(default=2, ge=0, le=20)

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    api_key: str | None = None
    api_read_key: str | None = None
    # a KPI body is never served more than this long after the read that produced it began, so a
    # newly applied version is served within it; revalidating costs one HEAD read per date, not per request
    api_cache_seconds: float = Field(default=2.0, ge=0, le=300)
    # the pipeline status (two SQS calls per queue and a DynamoDB query) is read at most this often
    api_status_seconds: float = Field(default=2.0, ge=0, le=300)
    api_max_body_bytes: int = Field(default=64 << 10, ge=0, le=16 << 20)  # no route reads a body; 413 above

    metrics_port: int = Field(default=0, ge=0, le=65535)
    health_file: str | None = None

    spark_master: str = "local[*]"
    spark_driver_memory: str = "2g"
    runner_batch_window_seconds: float = Field(default=0.3, ge=0, le=60)
    runner_max_batch: int = Field(default=50, ge=1, le=1000)
    # while the validator's queue has a backlog, a runner batch waits (up to this) for more files
    runner_max_hold_seconds: float = Field(default=30.0, ge=0, le=600)
    runner_warmup_runs: int = Field(default=2, ge=0, le=20)  # KPI jobs on synthetic data at start-up
    runner_mirror_dates: int = Field(default=64, ge=1, le=10000)  # date partitions kept on local disk
    # the validator's reconciliation sweep (core.reconcile): how often (0: never), and how old an
    # unnotified input file must be before it is sent through
    reconcile_seconds: float = Field(default=300.0, ge=0, le=86400)
    reconcile_grace_seconds: float = Field(default=600.0, ge=0, le=7 * 86400)
    # test-only: skews this runner's wall clock (tests prove no guarantee depends on clocks agreeing)
    runner_clock_offset_seconds: float = Field(default=0.0, ge=-86400, le=86400)
    lake_read_mode: str = Field(default="stage", pattern="^(stage|s3a)$")
    # a writer handed an old result applies the date's newest result object instead (see docs/writer.md)
    writer_apply_newest: bool = True
    # local scratch space (TMPDIR respected); the images set WORK_DIR explicitly
    work_dir: str = Field(default_factory=lambda: str(Path(tempfile.gettempdir()) / "playcount"))

    log_level: str = "INFO"
    log_format: str = Field(default="console", pattern="^(console|json)$")

    @field_validator(
        "s3_raw_data_prefix",
        "s3_metadata_prefix",
        "s3_validated_prefix",
        "s3_transformed_prefix",
        "s3_archive_prefix",
        "s3_rejected_prefix",
        "s3_processing_metadata_prefix",
    )
    @classmethod
    def _prefix_ends_with_slash(cls, value: str) -> str:
        if not value or not value.endswith("/") or value.startswith("/"):
            raise ValueError(f"S3 prefix {value!r} must be non-empty, relative and end with '/'")
        return value

    @field_validator("api_key", "api_read_key")
    @classmethod
    def _keys_are_strong(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 16:
            raise ValueError("API keys must be at least 16 characters long")
        return value

    @model_validator(mode="after")
    def _prefixes_do_not_overlap(self) -> Settings:
        prefixes = [
            self.s3_raw_data_prefix,
            self.s3_metadata_prefix,
            self.s3_validated_prefix,
            self.s3_transformed_prefix,
            self.s3_archive_prefix,
            self.s3_rejected_prefix,
            self.s3_processing_metadata_prefix,
        ]
        for a in prefixes:
            for b in prefixes:
                if a is not b and a.startswith(b):
                    # an output prefix inside an input prefix would re-trigger the pipeline forever
                    raise ValueError(f"S3 prefixes {a!r} and {b!r} overlap")
        return self

    @property
    def songs_prefix(self) -> str:
        return f"{self.s3_metadata_prefix}songs/"

    @property
    def users_prefix(self) -> str:
        return f"{self.s3_metadata_prefix}users/"

    def to_env(self) -> dict[str, str]:
        """These settings as environment variables (to hand to a child process)."""
        return {name.upper(): str(value) for name, value in self.model_dump().items() if value is not None}

    def queue_name(self, stage: str) -> str:
        return f"{self.sqs_queue_prefix}{stage}"


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from `env` (a dict, for tests) or from the process environment and `.env`."""
    if env is None:
        return Settings(**overrides)  # type: ignore[arg-type]
    fields = Settings.model_fields
    values: dict[str, object] = {k.lower(): v for k, v in env.items() if k.lower() in fields}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]
