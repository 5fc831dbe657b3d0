"""Runner settings: the shared settings (SPARK_MASTER, SPARK_DRIVER_MEMORY, LAKE_READ_MODE,
RUNNER_BATCH_WINDOW_SECONDS, RUNNER_MAX_BATCH, WORK_DIR, ...) and the runner's own knobs."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from playcount.core.config import Settings, load_settings

__all__ = ["RunnerOptions", "Settings", "load_options", "load_settings"]


class RunnerOptions(BaseSettings):
    """Knobs only the runner reads (environment variables of the same name, upper-cased)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    runner_warmup_runs: int = Field(default=1, ge=0, le=20, description="KPI jobs on synthetic data at start-up")
    runner_mirror_dates: int = Field(default=64, ge=1, le=10000, description="date partitions kept on local disk")


def load_options(env: Mapping[str, str] | None = None) -> RunnerOptions:
    if env is None:
        return RunnerOptions()
    fields = RunnerOptions.model_fields
    return RunnerOptions(_env_file=None, **{k.lower(): v for k, v in env.items() if k.lower() in fields})  # type: ignore[arg-type]
