"""Runner settings: the shared settings, plus Spark's and the batching's knobs."""

from __future__ import annotations

from pydantic import Field

from playcount.core.config import Settings


class RunnerSettings(Settings):
    spark_master: str = "local[*]"
    spark_driver_memory: str = "2g"
    # `stage`: date partitions mirrored to local disk with pyarrow; `s3a`: Spark reads S3 itself
    lake_read_mode: str = Field(default="stage", pattern="^(stage|s3a)$")
    runner_batch_window_seconds: float = Field(default=0.3, ge=0, le=60)
    runner_max_batch: int = Field(default=50, ge=1, le=1000)
    # while the validator's queue has a backlog, a batch waits (up to this) for more files
    runner_max_hold_seconds: float = Field(default=30.0, ge=0, le=600)
    runner_warmup_runs: int = Field(default=2, ge=0, le=20)  # KPI jobs on synthetic data at start-up
    runner_mirror_dates: int = Field(default=64, ge=1, le=10000)  # date partitions kept on local disk
    # test-only: skews this runner's wall clock (tests prove no guarantee depends on clocks agreeing)
    runner_clock_offset_seconds: float = Field(default=0.0, ge=-86400, le=86400)


__all__ = ["RunnerSettings"]
