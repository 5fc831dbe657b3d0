"""The settings every Playcount process shares, read from the environment (or a dict in tests).

Names of resources (bucket, prefixes, table, queues), the endpoint, logs, metrics and scratch
space. Each service adds its own knobs in a subclass in its `config.py`
(`ValidatorSettings`, `RunnerSettings`, `WriterSettings`, `ApiSettings`).

Settings come from `Settings.load()` (or a subclass's), never from module import, and refuse
unsafe values.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EMBEDDED_ENDPOINT = "http://127.0.0.1:4566"


class Settings(BaseSettings):
    """The shared settings; each field maps to the upper-case environment variable."""

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

    metrics_port: int = Field(default=0, ge=0, le=65535)
    health_file: str | None = None

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

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Self:
        """Build settings from `env` (a dict, for tests) or from the process environment and `.env`."""
        if env is None:
            return cls(**overrides)  # type: ignore[arg-type]
        fields = cls.model_fields
        values: dict[str, object] = {k.lower(): v for k, v in env.items() if k.lower() in fields}
        values.update(overrides)
        return cls(_env_file=None, **values)  # type: ignore[arg-type]


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """The shared settings (what the operations and the CLI need): `Settings.load`."""
    return Settings.load(env, **overrides)
